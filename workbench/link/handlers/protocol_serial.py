"""``serial:///dev/ttyACM0``: a plain serial device, spelled as a URL."""

from urllib.parse import urlsplit

import serial


def serial_class_for_url(url: str):
    path = urlsplit(url).path or url.split("://", 1)[1]
    return path, serial.Serial
