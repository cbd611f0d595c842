"""Health of the storage a process depends on, as reported by ``GET /healthz``.

The probes are the store adapters' (``ledger.store.sqlite``, ``ledger.store.postgres``), chosen
by the bootstrap; they raise `StoreUnavailableError` from the driver's error.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from entrypoints.settings import Mode
from ledger.domain.errors import StoreUnavailableError


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Whether the process can serve, with non-personal details for operators."""

    ok: bool
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A named probe of the store; ``report`` never raises."""

    mode: Mode
    probe: Callable[[], None]

    def report(self) -> HealthReport:
        try:
            self.probe()
        except (OSError, StoreUnavailableError) as error:
            # The driver's error class says what failed (a refused connection, a locked file)
            # without a word of the data.
            failed = error.__cause__ if error.__cause__ is not None else error
            return HealthReport(
                ok=False, details={"mode": self.mode.value, "store": type(failed).__name__}
            )
        return HealthReport(ok=True, details={"mode": self.mode.value, "store": "ok"})
