"""twistd entry point: `twistd -n -y chatserver.tac`. Environment -> config -> service; no logic."""

import os

from twisted.application import service
from twisted.logger import ILogObserver

from chatserver.config import ChatServerConfig
from chatserver.logobserver import make_log_observer
from chatserver.service import makeService

config = ChatServerConfig.from_environ(os.environ)
application = service.Application("chatserver")
application.setComponent(ILogObserver, make_log_observer(config))
makeService(config).setServiceParent(application)
