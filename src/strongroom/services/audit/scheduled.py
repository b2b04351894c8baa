"""The jobs the daemon's scheduler starts, as audit entries (actor: the scheduler).

A rule's firing is nobody's request at the keyboard, but it starts work on the data all
the same, so each job a run queues is a ``backup.start`` entry like one an operator
starts, with the scheduler as its actor and the run and rule in its details. The entries
are written in the transaction that queues the jobs (the scheduler's ``on_run_started``
hook), so a job exists exactly when its entry does.
"""

from __future__ import annotations

from sqlalchemy import select

from strongroom.catalog.models import Job
from strongroom.engine.runs import StartedRun
from strongroom.engine.scheduler import RunHook
from strongroom.engine.states import Work
from strongroom.services.audit.trail import record
from strongroom.services.context import Actor, local_actor


def scheduler_actor() -> Actor:
    """The daemon's scheduler as an actor: ``strongroom-scheduler@HOST``, its origin the
    daemon process and the user it runs as (``daemon on HOST pid N as USER``)."""
    daemon = local_actor("daemon")
    user, _, host = daemon.name.rpartition("@")
    return Actor(name=f"strongroom-scheduler@{host}", origin=f"{daemon.origin} as {user}")


def audit_scheduled_runs(actor: Actor | None = None) -> RunHook:
    """Return the scheduler hook recording one ``backup.start`` entry per queued job."""
    who = actor or scheduler_actor()

    def recorded(work: Work, run: StartedRun) -> None:
        if not run.job_ids:
            return
        lead = run.firing.lead
        jobs = work.session.scalars(select(Job).where(Job.id.in_(run.job_ids)).order_by(Job.id))
        for job in jobs:
            record(
                work.session,
                actor=who,
                at=work.now,
                action="backup.start",
                subject=job.id,
                reason=f"rule {lead.qualified_name} fired at {run.firing.fired_at.isoformat()}",
                details={
                    "job_id": job.id,
                    "resource": job.resource.name if job.resource else None,
                    "vault": lead.vault,
                    "rule": lead.qualified_name,
                    "run_id": run.run_id,
                    "params": dict(job.params or {}),
                },
            )

    return recorded
