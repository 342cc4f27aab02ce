"""twistd plugin: `twistd -n chatserver ...` and `twist chatserver ...` run the chat server.

twistd imports every module of `twisted.plugins` to list its commands, so this one only names
`chatserver.tap` (its `Options` and `makeService`), which `ServiceMaker` imports when the
`chatserver` command is used. This directory must have no `__init__.py`: Twisted adds every
`twisted/plugins` directory without one on `sys.path` to its plugin package.
"""

from twisted.application.service import ServiceMaker

chatserver = ServiceMaker(
    "django-twisted-chat chat server",
    "chatserver.tap",
    "The django-twisted-chat chat server (WebSockets, long polls, fan-out).",
    "chatserver",
)
