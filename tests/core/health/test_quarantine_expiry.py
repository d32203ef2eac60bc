"""Quarantined mail past [delivery] quarantine_keep_days: listed by an alert first, removed a day later, each said.

The health monitor and the housekeeper run as at the end of a cycle, on a
real state folder, with a clock the test moves.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from pop3gui.core.config.model import AccountConfig, AlertsConfig, Config, DeliveryConfig, RecipientPolicy
from pop3gui.core.engine.housekeeping import Housekeeper
from pop3gui.core.engine.report import Reporter
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.health.monitor import HealthMonitor
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Quarantine, QuarantineRecord

ACCOUNT = AccountConfig(name="alice", host="pop.isp.example", username="alice@isp.example",
                        deliver_to="alice@contoso.com")
CONFIG = Config(accounts=(ACCOUNT,), policies=(RecipientPolicy("Default", ("contoso.com",), "contoso.com"),),
                alerts=AlertsConfig(no_mail_hours=0, quarantine_hours=0),
                delivery=DeliveryConfig(quarantine_keep_days=30))
START = datetime(2030, 1, 7, 8, 0)


async def _no_session() -> SmtpSubmitter:
    raise AssertionError("no alert mail is due without mail_to")


class Runner:
    """What the end of every cycle does for quarantine retention: the monitor, then the housekeeper."""

    def __init__(self, tmp_path: Path, config: Config = CONFIG) -> None:
        self.paths = Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
        self.config = config
        self.clock = [START]
        self.events: list[Event] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        self.monitor = HealthMonitor(config, self.paths, bus, open_session=_no_session, now=lambda: self.clock[0])
        self.housekeeper = Housekeeper(self.paths, Reporter(bus), now=lambda: self.clock[0].timestamp())
        self.quarantine = Quarantine(self.paths.quarantine_dir)

    def quarantined(self, qid: str, at: datetime, subject: str = "Invoice") -> None:
        self.quarantine.add(b"Subject: x\r\n\r\nbody\r\n", QuarantineRecord(
            qid, "alice", f"uid-{qid}", f"<{qid}@fabrikam.example>", "billing@fabrikam.example", subject, "",
            ["alice@contoso.com"], "refused by the local server", "550 policy", "fix the rule", "",
            at.timestamp()))

    async def cycle_at(self, moment: datetime) -> list[Event]:
        self.clock[0] = moment
        first = len(self.events)
        await self.monitor.after_cycle([])
        await self.housekeeper.step(self.config)
        return self.events[first:]

    def ids(self) -> set[str]:
        return {r.id for r in self.quarantine.records()}


def of(events: list[Event], eid: EventId) -> list[Event]:
    return [e for e in events if e.id == eid]


async def test_an_alert_lists_the_message_a_day_before_and_it_goes_at_its_keep_days_with_an_event(
        tmp_path: Path) -> None:
    run = Runner(tmp_path)
    run.quarantined("q-old", START, subject="Invoice 42")
    run.quarantined("q-new", START + timedelta(days=10))
    assert not of(await run.cycle_at(START + timedelta(days=28, hours=12)), EventId.ALERT_RAISED)
    said = await run.cycle_at(START + timedelta(days=29, hours=1))
    [alert] = of(said, EventId.ALERT_RAISED)
    assert alert.text.startswith("Alert quarantine_expiry:") and "q-old" in alert.text and "q-new" not in alert.text
    assert "billing@fabrikam.example" in alert.text and "'Invoice 42'" in alert.text
    assert "export" in alert.fix and "quarantine_keep_days" in alert.fix
    assert run.ids() == {"q-old", "q-new"} and not of(said, EventId.QUARANTINE_EXPIRED)
    # Keep days not up yet: still there.
    assert not of(await run.cycle_at(START + timedelta(days=29, hours=23)), EventId.QUARANTINE_EXPIRED)
    said = await run.cycle_at(START + timedelta(days=30, hours=1))
    [removed] = of(said, EventId.QUARANTINE_EXPIRED)
    assert "q-old" in removed.text and "billing@fabrikam.example" in removed.text and "Invoice 42" in removed.text
    assert (removed.account, removed.uid, removed.subject) == ("alice", "uid-q-old", "Invoice 42")
    assert removed.message_id == "<q-old@fabrikam.example>"
    assert run.ids() == {"q-new"}
    assert not (run.paths.quarantine_dir / "q-old.eml").exists()
    # The next cycle ends the alert: its messages have left the quarantine.
    assert of(await run.cycle_at(START + timedelta(days=30, hours=2)), EventId.ALERT_RECOVERED)


async def test_a_runner_that_was_off_warns_first_and_removes_a_day_later(tmp_path: Path) -> None:
    run = Runner(tmp_path)
    run.quarantined("q1", START)
    said = await run.cycle_at(START + timedelta(days=45))  # the first cycle in weeks
    assert of(said, EventId.ALERT_RAISED) and not of(said, EventId.QUARANTINE_EXPIRED)
    assert not of(await run.cycle_at(START + timedelta(days=45, hours=23)), EventId.QUARANTINE_EXPIRED)
    assert of(await run.cycle_at(START + timedelta(days=46, minutes=1)), EventId.QUARANTINE_EXPIRED)
    assert run.ids() == set()


async def test_a_message_resubmitted_or_exported_in_time_is_not_removed(tmp_path: Path) -> None:
    run = Runner(tmp_path)
    run.quarantined("q1", START)
    await run.cycle_at(START + timedelta(days=29, hours=1))
    run.quarantine.remove("q1")  # resubmitted, or deleted by the admin
    said = await run.cycle_at(START + timedelta(days=31))
    assert not of(said, EventId.QUARANTINE_EXPIRED) and of(said, EventId.ALERT_RECOVERED)


async def test_keep_days_0_keeps_quarantined_mail_until_the_admin_acts(tmp_path: Path) -> None:
    run = Runner(tmp_path, replace(CONFIG, delivery=DeliveryConfig(quarantine_keep_days=0)))
    run.quarantined("q1", START)
    said = await run.cycle_at(START + timedelta(days=400))
    assert not of(said, EventId.ALERT_RAISED) and not of(said, EventId.QUARANTINE_EXPIRED)
    assert run.ids() == {"q1"}


async def test_the_quarantine_list_command_still_lists_what_is_left(tmp_path: Path) -> None:
    run = Runner(tmp_path)
    run.quarantined("q1", START)
    run.quarantined("q2", START + timedelta(days=20))
    await run.cycle_at(START + timedelta(days=29, hours=1))
    await run.cycle_at(START + timedelta(days=30, hours=1))
    run.paths.config_file.write_text('version = 1\n', encoding="utf-8")
    env = {"POP3GUI_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "pop3gui", "--config", str(run.paths.config_file), "quarantine",
                          "list"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "q2" in out.stdout and "q1" not in out.stdout
