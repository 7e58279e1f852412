"""The pure supervisor state machine: no processes, time passed in."""

import pytest

from sentinel_stack.supervisor.lifecycle import (
    ExitStatus,
    IllegalTransition,
    Lifecycle,
    Restart,
    RestartPolicy,
    Settle,
    State,
)

CRASH = ExitStatus(code=1)
CLEAN = ExitStatus(code=0)


def running(policy: RestartPolicy, now: float = 0.0) -> Lifecycle:
    life = Lifecycle(policy)
    life.start(now)
    life.ready(now)
    return life


def test_backoff_grows_then_caps_and_jitter_stays_in_band():
    policy = RestartPolicy(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.2)
    assert [policy.delay(n, 0.5) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.delay(0, 0.0) == pytest.approx(0.08)
    assert policy.delay(0, 0.999999) == pytest.approx(0.12, abs=1e-6)


def test_crash_restarts_with_growing_backoff_then_goes_fatal():
    life = running(RestartPolicy(initial=0.1, multiplier=2, jitter=0, max_restarts=3, window=60))
    delays = []
    for t in range(3):
        decision = life.exited(float(t), CRASH, 0.5)
        assert isinstance(decision, Restart)
        assert life.state is State.BACKOFF
        delays.append(decision.delay)
        life.start(t + 0.5)
    assert delays == pytest.approx([0.1, 0.2, 0.4])
    decision = life.exited(3.0, CRASH, 0.5)
    assert decision == Settle(State.FATAL, life.reason)
    assert "gave up after 3 restarts" in life.reason
    assert life.restarts == 3


def test_restarts_outside_the_window_are_forgotten():
    life = running(RestartPolicy(jitter=0, max_restarts=2, window=10))
    for t in (0.0, 1.0, 20.0, 21.0, 40.0):
        assert isinstance(life.exited(t, CRASH, 0.5), Restart)
        life.start(t)
    assert life.state is State.STARTING


def test_stable_uptime_resets_the_backoff():
    policy = RestartPolicy(initial=1.0, multiplier=2, jitter=0, stable_after=5, max_restarts=100)
    life = running(policy)
    assert life.exited(1.0, CRASH, 0.5) == Restart(1.0)
    life.start(2.0)
    assert life.exited(2.5, CRASH, 0.5) == Restart(2.0)  # not ready: no reset
    life.start(5.0)
    life.ready(5.0)
    assert life.exited(11.0, CRASH, 0.5) == Restart(1.0)  # 6 s up counts as stable


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        ("never", CRASH, State.EXITED),
        ("on-failure", CLEAN, State.EXITED),
        ("on-failure", CRASH, State.BACKOFF),
        ("always", CLEAN, State.BACKOFF),
        ("on-failure", ExitStatus(signal=9), State.BACKOFF),
    ],
)
def test_restart_policy_modes(mode, status, expected):
    life = running(RestartPolicy(mode=mode))
    life.exited(1.0, status, 0.5)
    assert life.state is expected


def test_requested_stop_settles_stopped_without_restart():
    life = running(RestartPolicy(mode="always"))
    assert life.stop() is True
    assert life.state is State.STOPPING
    assert life.exited(1.0, ExitStatus(signal=15), 0.5) == Settle(
        State.STOPPED, "stopped on request"
    )


def test_stop_during_backoff_needs_no_signal():
    life = running(RestartPolicy())
    life.exited(1.0, CRASH, 0.5)
    assert life.stop() is False
    assert life.state is State.STOPPED


def test_illegal_transitions_raise():
    life = Lifecycle(RestartPolicy())
    with pytest.raises(IllegalTransition):
        life.ready(0.0)
    life.start(0.0)
    life.ready(0.0)
    with pytest.raises(IllegalTransition):
        life.start(1.0)


def test_manual_start_after_fatal_forgets_past_crashes():
    life = running(RestartPolicy(jitter=0, max_restarts=1))
    life.exited(0.0, CRASH, 0.5)
    life.start(0.1)
    assert isinstance(life.exited(0.2, CRASH, 0.5), Settle)
    assert life.state is State.FATAL
    life.forget_restarts()
    life.start(1.0)
    assert isinstance(life.exited(1.1, CRASH, 0.5), Restart)


def test_exit_status_text():
    assert str(ExitStatus(code=3)) == "exit code 3"
    assert str(ExitStatus(signal=9, reason="watchdog")) == "killed by SIGKILL (watchdog)"


async def test_notify_listener_drains_what_an_earlier_incarnation_sent(short_dir):
    import socket

    from sentinel_stack.supervisor.notify import NotifyListener

    listener = NotifyListener(short_dir / "n.sock")
    listener._raw.bind(str(listener.path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        for _ in range(3):
            sender.sendto(b"READY=1", str(listener.path))
    assert listener.drain() == 3
    assert listener.drain() == 0
    listener.close()
