"""The port picker, headless: it lists a running virtual board (its real pty) and a new one
per catalog board, follows the URL field both ways, and the capture panel connects with it."""

from __future__ import annotations

import pytest
from conftest import start_sim

pytest.importorskip("ipywidgets")

from workbench.boards import load_catalog  # noqa: E402
from workbench.link import MAX_BAUD, MIN_BAUD, FoundDevice  # noqa: E402
from workbench.ui.port_picker import BAUD_RATES, OTHER, PortPicker, port_choices  # noqa: E402


@pytest.fixture
def running_board(tmp_path):
    proc, line = start_sim("--board", "pico", "--pty", "--flash", str(tmp_path / "p.flash"))
    assert line.startswith("PTY /dev/")
    yield line.split(" ", 1)[1]
    proc.terminate()
    proc.wait(5)


def test_the_menu_lists_a_running_virtual_board_and_new_ones(running_board):
    picker = PortPicker("")
    kinds = {c.url: c.kind for c in picker.choices}
    assert kinds[running_board] == "virtual"
    label = next(c.label for c in picker.choices if c.url == running_board)
    assert "pico" in label
    assert {f"sim://{b}" for b in load_catalog()} <= {u for u, k in kinds.items() if k == "new"}
    assert picker.choices[-1].url == OTHER
    # choosing the running board puts its pty in the field, which hides
    picker.menu.value = running_board
    assert picker.url == running_board and picker.text.layout.display == "none"


def test_a_serial_port_is_named_by_the_catalog_boards_its_usb_id_matches():
    nano = load_catalog()["nano33ble"]
    found = [FoundDevice("/dev/ttyACM7", "USB ACM", "2341:805A", [nano]),
             FoundDevice("/dev/ttyS0", "ttyS0")]
    choices = port_choices(found)
    assert choices[0].label == f"/dev/ttyACM7: {nano.name} (2341:805A)"
    assert choices[0].kind == "serial" and choices[1].label == "/dev/ttyS0: ttyS0"


def test_text_selects_the_matching_entry_or_other(tmp_path):
    picker = PortPicker("sim://nano33ble")
    assert picker.menu.value == "sim://nano33ble" and picker.text.layout.display == "none"
    url = f"sim://nano33ble?flash={tmp_path / 'x.flash'}"
    picker.url = url
    assert picker.menu.value == OTHER and picker.text.layout.display == "" and picker.url == url
    picker.menu.value = "sim://pico"
    assert picker.url == "sim://pico"
    picker.menu.value = OTHER   # the field shows, keeping the URL until it is edited
    assert picker.text.layout.display == "" and picker.url == "sim://pico"
    picker.refresh()            # a new listing keeps the choice
    assert picker.menu.value == "sim://pico"


def test_baud_rates_lie_in_the_links_range():
    assert BAUD_RATES and all(MIN_BAUD <= r <= MAX_BAUD for r in BAUD_RATES)
    assert 115200 in BAUD_RATES and 9600 in BAUD_RATES
    assert PortPicker("x").baudrate == 115200
    odd = PortPicker("x", baudrate=250000)   # a rate given in code stays selectable
    assert odd.baudrate == 250000


def test_the_capture_panel_connects_at_the_chosen_baud_rate(sim_url, tmp_path):
    from workbench.ui.capture_panel import CapturePanel

    panel = CapturePanel(tmp_path / "ds", sim_url(), connect=False)
    try:
        panel.port.baud.value = 57600
        panel.connect()
        assert panel.recorder.device is not None and panel.recorder.device.baudrate == 57600
        assert panel.url is panel.port.text
    finally:
        panel.close()
