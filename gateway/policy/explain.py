"""Explaining a recorded decision: replay its stored input against the policies OPA serves now.

The stored input is exactly what OPA was given, and the policy takes time only from the input,
so a replay under the same bundle version gives the same decision. A difference therefore has
one of two causes, and the explanation names it: the policy changed (another bundle version),
or the recorded decision was not the policy's own (OPA was unavailable, slow or gave no usable
decision, and the gateway refused on its behalf).
"""

from typing import Any

from gateway.policy.client import PolicyClient, PolicyError

GATEWAY_CODES = frozenset(
    {"POLICY_UNAVAILABLE", "POLICY_UNDEFINED", "POLICY_ERROR", "OBLIGATION_UNSUPPORTED"}
)


def _codes(result: dict[str, Any]) -> list[str]:
    return sorted({r.get("code", "?") for r in result.get("reasons") or []})


def _titles(result: dict[str, Any]) -> dict[str, str]:
    return {r.get("code", "?"): r.get("title", "") for r in result.get("reasons") or []}


def differences(recorded: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    """Return one sentence per way the replayed decision differs from the recorded one."""
    out: list[str] = []
    if bool(recorded.get("allow")) != bool(replayed.get("allow")):
        was = "allowed" if recorded.get("allow") else "denied"
        now = "allowed" if replayed.get("allow") else "denied"
        out.append(f"the exchange was {was} and would now be {now}")
    before, after = set(_codes(recorded)), set(_codes(replayed))
    titles = {**_titles(recorded), **_titles(replayed)}
    for code in sorted(after - before):
        out.append(f"reason {code} ({titles[code]}) would now be given")
    for code in sorted(before - after):
        out.append(f"reason {code} ({titles[code]}) would no longer be given")
    for code in sorted(before & after):
        old = next(r for r in recorded["reasons"] if r.get("code") == code).get("detail")
        new = next(r for r in replayed["reasons"] if r.get("code") == code).get("detail")
        if old != new:
            out.append(f"reason {code} now reads {new!r} (was {old!r})")
    old_obl, new_obl = recorded.get("obligations") or {}, replayed.get("obligations") or {}
    if old_obl:  # a refusal made by the gateway records no obligations
        for key in sorted(set(old_obl) | set(new_obl)):
            if old_obl.get(key) != new_obl.get(key):
                out.append(
                    f"obligation {key} would now be {new_obl.get(key)!r} (was {old_obl.get(key)!r})"
                )
    extra = sorted((set(recorded) | set(replayed)) - {"allow", "reasons", "obligations"})
    for key in extra:
        if recorded.get(key) != replayed.get(key):
            out.append(f"{key} would now be {replayed.get(key)!r} (was {recorded.get(key)!r})")
    return out


def explain(
    *,
    decision_id: str,
    policy_input: dict[str, Any],
    recorded: dict[str, Any],
    recorded_version: str | None,
    client: PolicyClient,
) -> dict[str, Any]:
    """Replay a recorded decision; return whether it would differ now, how and why."""
    version, _ = client.version(max_age=0)
    try:
        replayed = client.decide(policy_input).model_dump(mode="json")
    except PolicyError as exc:
        return {
            "decision": decision_id,
            "replayed": None,
            "same": None,
            "recorded": recorded,
            "recorded_version": recorded_version,
            "current_version": version,
            "differences": [],
            "why": f"the current policies could not be asked: {exc}",
        }
    diffs = differences(recorded, replayed)
    by_gateway = set(_codes(recorded)) & GATEWAY_CODES
    if not diffs:
        why = "the current policies decide exactly as recorded" + (
            " (same bundle version)"
            if version == recorded_version
            else f" (bundle version {recorded_version} then, {version} now)"
        )
    elif by_gateway:
        why = (
            f"the recorded decision was the gateway's refusal ({', '.join(sorted(by_gateway))}),"
            " not the policy's: OPA gave no usable decision then; the policy decides it now"
        )
    elif version != recorded_version:
        why = (
            f"the policies changed: the decision was made under bundle version "
            f"{recorded_version} and the current one is {version}; the input is replayed "
            "unchanged, so every difference comes from the policy"
        )
    else:
        why = (
            "the bundle version is the same but the decision differs: the recorded result "
            "does not match what this policy computes from this input, which needs investigating"
        )
    return {
        "decision": decision_id,
        "same": not diffs,
        "recorded": recorded,
        "replayed": replayed,
        "recorded_version": recorded_version,
        "current_version": version,
        "differences": diffs,
        "why": why,
    }


def render(report: dict[str, Any]) -> str:
    """Return the explanation as text for a person."""
    recorded, replayed = report["recorded"], report["replayed"]

    def verdict(result: dict[str, Any]) -> str:
        codes = _codes(result)
        return ("allowed" if result.get("allow") else "denied") + (
            f" ({', '.join(codes)})" if codes else ""
        )

    lines = [
        f"decision  {report['decision']}",
        f"recorded  {verdict(recorded)} under {report['recorded_version'] or 'no known version'}",
    ]
    if replayed is None:
        lines.append(f"now       cannot replay: {report['why']}")
        return "\n".join(lines)
    lines.append(f"now       {verdict(replayed)} under {report['current_version']}")
    lines.append(f"verdict   {'SAME' if report['same'] else 'DIFFERS'}: {report['why']}")
    lines += [f"  - {d}" for d in report["differences"]]
    for reason in replayed.get("reasons") or []:
        lines.append(
            f"  reason now: {reason['code']} {reason['title']}: {reason.get('detail', '')}"
        )
    return "\n".join(lines)
