"""Ctrl-C and SIGTERM end a run alike, and are held (not lost) while a checkpoint is saved."""

from __future__ import annotations

import os
import signal

import pytest

from anomaly_cli import interrupts


@pytest.fixture(autouse=True)
def _terminal_handlers():
    """Handlers as in a terminal, whatever the pytest worker set; restored afterwards."""
    previous = {sig: signal.getsignal(sig) for sig in interrupts.HELD}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def test_a_held_ctrl_c_arrives_when_the_block_ends():
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts.held():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("the save went on")
    assert finished == ["the save went on"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_an_interrupt_of_its_own_kind_held_like_ctrl_c():
    with pytest.raises(interrupts.Terminated), interrupts.terminate_as_interrupt():
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("the held SIGTERM should have arrived at the end of the block")


def test_a_block_without_signals_changes_nothing():
    with interrupts.held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
