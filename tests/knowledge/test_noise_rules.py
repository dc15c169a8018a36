"""When a firing is noise on arrival (`knowledge.noise.on_arrival`): the flapping rule holds for
critical alerts too — their first firing is posted at once, never held, but a critical back
within the flap span after a short firing nobody acknowledged is folded, not a new card."""

from __future__ import annotations

from knowledge.noise import NoiseRules, on_arrival

RULES = NoiseRules()  # hold 120 s, short 600 s, flap span 3600 s
T = 10_000.0


def test_a_critical_back_soon_after_a_short_firing_is_flapping() -> None:
    why = on_arrival("critical", starts_at=T, earlier=[(T - 900, T - 780)],
                     acknowledged_before=False, rules=RULES)
    assert why is not None and why.startswith("flapping")


def test_a_critical_is_never_folded_on_its_first_firing_nor_once_acknowledged() -> None:
    assert on_arrival("critical", starts_at=T, earlier=[], acknowledged_before=False,
                      rules=RULES) is None
    assert on_arrival("critical", starts_at=T, earlier=[(T - 900, T - 780)],
                      acknowledged_before=True, rules=RULES) is None


def test_a_critical_back_after_a_long_firing_or_long_after_is_a_new_problem() -> None:
    long_before = [(T - 5400, T - 1800)]  # an hour-long firing: not short
    assert on_arrival("critical", starts_at=T, earlier=long_before,
                      acknowledged_before=False, rules=RULES) is None
    long_ago = [(T - 7800, T - 7700)]  # short, but over an hour before
    assert on_arrival("critical", starts_at=T, earlier=long_ago,
                      acknowledged_before=False, rules=RULES) is None


def test_chronic_is_still_never_said_of_a_critical() -> None:
    # Firing most of the day, three times: a warning would be chronic; a critical is not.
    earlier = [(T - 80_000, T - 50_000), (T - 40_000, T - 5_000)]
    assert on_arrival("warning", starts_at=T, earlier=earlier, acknowledged_before=False,
                      rules=RULES) is not None
    assert on_arrival("critical", starts_at=T, earlier=earlier, acknowledged_before=False,
                      rules=RULES) is None


def test_a_capacity_warning_is_noise_on_arrival_but_not_critical_or_acknowledged() -> None:
    why = on_arrival("warning", starts_at=T, earlier=[], acknowledged_before=False,
                     rules=RULES, alertname="KubeCPUOvercommit")
    assert why is not None and why.startswith("capacity: KubeCPUOvercommit")
    for severity, acknowledged in (("critical", False), ("warning", True)):
        assert on_arrival(severity, starts_at=T, earlier=[], acknowledged_before=acknowledged,
                          rules=RULES, alertname="KubeCPUOvercommit") is None
    # Any other warning alone is not noise on arrival; the list is a setting.
    assert on_arrival("warning", starts_at=T, earlier=[], acknowledged_before=False,
                      rules=RULES, alertname="KubeNodeNotReady") is None
    assert on_arrival("warning", starts_at=T, earlier=[], acknowledged_before=False,
                      rules=NoiseRules(capacity=frozenset({"NodeNeedsMoreDisks"})),
                      alertname="NodeNeedsMoreDisks") is not None
