"""pyserial URL handlers of the workbench (``sim://``, ``serial://``).

Registered by appending this package to ``serial.protocol_handler_packages``,
as pyserial documents; :func:`workbench.link.transport.open_port` does that.
"""
