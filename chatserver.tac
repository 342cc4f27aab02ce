"""twistd entry point: `twistd -n -y chatserver.tac`. Environment -> config -> service; no logic."""

import os

from twisted.application import service

from chatserver.config import ChatServerConfig
from chatserver.service import makeService

application = service.Application("chatserver")
makeService(ChatServerConfig.from_environ(os.environ)).setServiceParent(application)
