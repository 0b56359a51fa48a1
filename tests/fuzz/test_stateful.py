"""A hypothesis state machine drives the service layer the way the API does (each use case in
one `writing(db)` transaction, allocations inside `urgent_resupply_on_shortage`): register,
randomize (eligible and not), dispense later visits with changing weights, replace kits, ship
and receive shipments, quarantine and release kits and shipments, unblind, and move the study
through its stages. After every step the invariants are read back from the database.

Each example starts from a copy of one demo database built per engine (a file copy on SQLite,
CREATE DATABASE ... TEMPLATE on PostgreSQL). Low resupply levels (trigger 2, target 5) make
shipments, shortages and urgent resupply happen within a few steps.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import (
    Cohort,
    DispensedKit,
    Dispensing,
    Kit,
    Randomization,
    RandomizationList,
    Shipment,
    ShipmentKit,
    Slot,
    Subject,
    User,
    UserSite,
)
from app.domain.eligibility import EligibilityAnswers, Exclusions
from app.domain.errors import DomainError
from app.domain.kits import KitStatus
from app.domain.roles import Role
from app.domain.study import StudyDefinition, load_study
from app.services import (
    audit,
    dispensing,
    emergency_unblinding,
    inventory,
    shipments,
    stages,
    subjects,
)
from app.services.actor import Actor
from app.services.demo import set_up_demo
from app.services.dispensing import replace_kit, urgent_resupply_on_shortage
from app.services.randomization import randomize
from app.services.transaction import utcnow, writing
from tests.support.databases import pg_admin, pg_url
from tests.support.demo import DEMO_PASSWORD, DEMO_SEED

T = TypeVar("T")

SCALE = max(1, int(os.environ.get("IRT_FUZZ_SCALE", "1")))
EXAMPLES = 30 * SCALE
STEPS = 20
SITE_USERS = {"DE01": "coordinator", "DE02": "coordinator", "US01": "coordinator2"}
WEIGHT_FACTORS = (Decimal("0.85"), Decimal("0.95"), Decimal("1"), Decimal("1.05"), Decimal("1.15"))


def actor_of(session: Session, username: str) -> Actor:
    user = session.execute(select(User).where(User.username == username)).scalar_one()
    sites = session.execute(select(UserSite.site_id).where(UserSite.user_id == user.id)).scalars()
    return Actor(user.username, Role(user.role), frozenset(sites))


def answers(
    visit_date: date, eligible: bool, sledai: int, prednisone: int, miss: str
) -> EligibilityAnswers:
    """An eligible subject's answers, or answers missing exactly one criterion (`miss`)."""
    exclusions = dict.fromkeys(Exclusions.__dataclass_fields__, False)
    if not eligible and miss == "exclusion":
        exclusions["active_or_unstable_lupus_nephritis"] = True
    screening = visit_date - timedelta(days=7)
    return EligibilityAnswers(
        sle_diagnosis_date=screening - timedelta(days=800),
        screening_date=screening,
        sledai_2k_score=4 if not eligible and miss == "sledai" else sledai,
        bilag_a_count=1,
        bilag_b_count=0,
        on_soc_medication=eligible or miss != "soc",
        prednisone_equivalent_mg_per_day=Decimal(prednisone),
        exclusions=Exclusions(**exclusions),
    )


class Trial(RuleBasedStateMachine):
    """One demo study, driven through the services; `make_db` gives it a fresh database."""

    make_db: Callable[[], tuple[Database, Callable[[], None]]]
    """A fresh demo database for each example, and how to drop it."""
    study: StudyDefinition

    def __init__(self) -> None:
        super().__init__()
        self.db, self._drop = self.make_db()
        self.today = utcnow().date()
        # day 1 far enough back that every later visit (W4 ... W48) is dated today or earlier
        self.day_one = self.today - timedelta(days=self.study.schedule.visits()[-1].day_offset)
        self.visits = self.study.schedule.visits()
        self.registered = 0
        self.outcomes: Counter[str] = Counter()

    def teardown(self) -> None:
        print(dict(sorted(self.outcomes.items())))
        self.db.dispose()
        self._drop()

    # --- helpers ------------------------------------------------------------------------------

    def _do(self, what: str, work: Callable[[Session], T], *allowed: str) -> T | None:
        """Run one use case in its own writing transaction; a refusal must be an expected one."""
        try:
            with urgent_resupply_on_shortage(self.db, self.study), writing(self.db) as session:
                result = work(session)
        except DomainError as refusal:
            assert refusal.code in allowed, f"{what}: unexpected {refusal.code}: {refusal.detail}"
            self.outcomes[f"{what}:{refusal.code}"] += 1
            return None
        self.outcomes[f"{what}:ok"] += 1
        return result

    def _pick(self, index: int, query: Any) -> Any:
        with self.db.read() as session:
            rows = session.execute(query).all()
        return rows[index % len(rows)] if rows else None

    # --- rules --------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """Kit selection ties broken by a seeded generator; a few subjects to work on from the
        first step (two of them randomized)."""
        dispensing._rng = random.Random(0)  # type: ignore[assignment]
        for site in ("DE01", "DE02", "US01", "DE01"):
            self.register(site, "F")
        for index in (0, 2):
            self.randomize_subject(index, True, "sledai", 8, 5, 70, False)

    @rule(site=st.sampled_from(sorted(SITE_USERS)), sex=st.sampled_from(["F", "M"]))
    def register(self, site: str, sex: str) -> None:
        self.registered += 1
        number = f"{site}-S{self.registered:03d}"

        def work(session: Session) -> Any:
            actor = actor_of(session, SITE_USERS[site])
            return subjects.register(
                session,
                actor=actor,
                site_id=site,
                screening_number=number,
                sex=sex,
                year_of_birth=1980,
            )

        assert self._do("register", work) is not None

    @rule(
        index=st.integers(0, 1000),
        eligible=st.booleans(),
        miss=st.sampled_from(["sledai", "soc", "exclusion"]),
        sledai=st.integers(6, 16),
        prednisone=st.integers(0, 20),
        weight=st.integers(35, 160),
        investigator=st.booleans(),
    )
    def randomize_subject(
        self,
        index: int,
        eligible: bool,
        miss: str,
        sledai: int,
        prednisone: int,
        weight: int,
        investigator: bool,
    ) -> None:
        candidates = select(Subject.id, Subject.site_id).order_by(Subject.id)
        if index % 5:  # mostly a subject still to randomize, sometimes any (a second time)
            candidates = candidates.where(Subject.status == "registered")
        row = self._pick(index, candidates)
        if row is None:
            return
        subject_id, site = row
        username = "investigator" if investigator and site != "US01" else SITE_USERS[site]
        given = answers(self.day_one, eligible, sledai, prednisone, miss)

        def work(session: Session) -> Any:
            actor = actor_of(session, username)
            return randomize(
                session,
                study=self.study,
                actor=actor,
                subject_id=subject_id,
                visit_date=self.day_one,
                weight_kg=Decimal(weight),
                answers=given,
            )

        allowed = ["already_randomized", "stage_full", "stage_closed", "no_kits_available"]
        result = self._do("randomize", work, *allowed, *([] if eligible else ["ineligible"]))
        if result is not None:
            assert eligible, "an ineligible subject was randomized"

    @rule(
        index=st.integers(0, 1000),
        skip=st.sampled_from([1, 1, 1, 2]),
        factor=st.sampled_from(WEIGHT_FACTORS),
        username=st.sampled_from(["coordinator", "investigator", "pharmacist"]),
    )
    def dispense_next_visit(self, index: int, skip: int, factor: Decimal, username: str) -> None:
        row = self._pick(
            index,
            select(Subject.id, Subject.site_id, func.max(Dispensing.visit_index))
            .join(Dispensing, Dispensing.subject_id == Subject.id)
            .group_by(Subject.id, Subject.site_id)
            .order_by(Subject.id),
        )
        if row is None:
            return
        subject_id, site, last = row
        if last + skip >= len(self.visits):
            return
        visit = self.visits[last + skip]
        with self.db.read() as session:
            previous = (
                session.execute(
                    select(Dispensing.weight_measured_kg)
                    .where(Dispensing.subject_id == subject_id)
                    .order_by(Dispensing.visit_index.desc())
                )
                .scalars()
                .first()
            )
        weight = min(Decimal(200), max(Decimal(30), (previous * factor).quantize(Decimal("0.1"))))
        username = SITE_USERS[site] if site == "US01" else username

        def work(session: Session) -> Any:
            return dispensing.dispense(
                session,
                study=self.study,
                actor=actor_of(session, username),
                subject_id=subject_id,
                visit_code=visit.code,
                visit_date=self.day_one + timedelta(days=visit.day_offset),
                weight_kg=weight,
            )

        self._do("dispense", work, "no_kits_available")

    @rule(index=st.integers(0, 1000), status=st.sampled_from([KitStatus.DAMAGED, KitStatus.LOST]))
    def replace_dispensed_kit(self, index: int, status: KitStatus) -> None:
        row = self._pick(
            index,
            select(Dispensing.subject_id, DispensedKit.kit_number, Subject.site_id)
            .join(Dispensing, Dispensing.id == DispensedKit.dispensing_id)
            .join(Subject, Subject.id == Dispensing.subject_id)
            .where(DispensedKit.replaced_at.is_(None), Subject.site_id != "US01")
            .order_by(DispensedKit.id),
        )
        if row is None:
            return
        subject_id, kit_number, _ = row

        def work(session: Session) -> Any:
            return replace_kit(
                session,
                study=self.study,
                actor=actor_of(session, "pharmacist"),
                subject_id=subject_id,
                kit_number=kit_number,
                status=status,
                reason="vial broken on the ward",
                today=self.today,
            )

        self._do("replace", work, "no_kits_available")

    @rule(
        index=st.integers(0, 1000),
        damaged=st.integers(0, 1),
        missing=st.integers(0, 1),
        excursion=st.booleans(),
    )
    def ship_and_receive(self, index: int, damaged: int, missing: int, excursion: bool) -> None:
        row = self._pick(
            index,
            select(Shipment.id, Shipment.status)
            .where(Shipment.status.in_(("requested", "shipped")))
            .order_by(Shipment.id),
        )
        if row is None:
            return
        shipment_id, status = row
        if status == "requested":
            self._do(
                "ship",
                lambda s: shipments.ship(
                    s,
                    study=self.study,
                    actor=actor_of(s, "supply"),
                    shipment_id=shipment_id,
                    today=self.today,
                ),
            )
        with self.db.read() as session:
            numbers = sorted(
                session.execute(
                    select(ShipmentKit.kit_number).where(ShipmentKit.shipment_id == shipment_id)
                ).scalars()
            )
        self._do(
            "receive",
            lambda s: shipments.receive(
                s,
                study=self.study,
                actor=actor_of(s, "supply"),
                shipment_id=shipment_id,
                receipt=shipments.Receipt(
                    damaged=numbers[:damaged],
                    missing=numbers[damaged : damaged + missing],
                    temperature_excursion=excursion,
                ),
            ),
        )

    @rule(index=st.integers(0, 1000), release=st.booleans())
    def resolve_quarantined_shipment(self, index: int, release: bool) -> None:
        row = self._pick(
            index,
            select(Shipment.id).where(Shipment.status == "quarantined").order_by(Shipment.id),
        )
        if row is None:
            return
        self._do(
            "resolve_shipment",
            lambda s: shipments.resolve_quarantine(
                s,
                study=self.study,
                actor=actor_of(s, "supply"),
                shipment_id=row[0],
                release=release,
                reason="temperature log reviewed",
            ),
        )

    @rule(index=st.integers(0, 1000))
    def quarantine_kit(self, index: int) -> None:
        row = self._pick(
            index,
            select(Kit.kit_number)
            .where(Kit.status == KitStatus.AVAILABLE.value, Kit.site_id.is_not(None))
            .order_by(Kit.kit_number),
        )
        if row is None:
            return
        self._do(
            "quarantine",
            lambda s: inventory.change_status(
                s,
                study=self.study,
                actor=actor_of(s, "pharmacist" if index % 2 else "supply"),
                kit_number=row[0],
                target=KitStatus.QUARANTINED,
                reason="fridge alarm",
                today=self.today,
            ),
            "not_found",  # the pharmacist does not see kits at US01
        )

    @rule(index=st.integers(0, 1000))
    def release_kit(self, index: int) -> None:
        row = self._pick(
            index,
            select(Kit.kit_number)
            .where(Kit.status == KitStatus.QUARANTINED.value, Kit.site_id.is_not(None))
            .order_by(Kit.kit_number),
        )
        if row is None:
            return
        self._do(
            "release",
            lambda s: inventory.change_status(
                s,
                study=self.study,
                actor=actor_of(s, "supply"),
                kit_number=row[0],
                target=KitStatus.AVAILABLE,
                reason="temperature within range",
                today=self.today,
            ),
        )

    @rule(index=st.integers(0, 1000))
    def unblind(self, index: int) -> None:
        row = self._pick(index, select(Subject.id, Subject.site_id).order_by(Subject.id))
        if row is None:
            return
        subject_id, site = row

        def work(session: Session) -> Any:
            return emergency_unblinding.unblind(
                session,
                study=self.study,
                actor=actor_of(session, "investigator"),
                subject_id=subject_id,
                reason_category="adverse_event",
                reason="anaphylaxis after the infusion",
            )

        allowed = ["not_randomized", "already_unblinded"]
        self._do("unblind", work, *allowed, *(["not_found"] if site == "US01" else []))

    @rule()
    def advance_stage(self) -> None:
        """The sponsor's next decision: close the open cohort, open the next, or select the
        phase II dose (the level of the first closed cohort)."""
        with self.db.read() as session:
            cohorts = session.execute(select(Cohort).order_by(Cohort.position)).scalars().all()
            phase2 = stages.phase2_view(session)["dose_mg_per_kg"]
        open_ = [c.code for c in cohorts if c.status == "open"]
        planned = [c.code for c in cohorts if c.status == "planned"]
        closed = [c for c in cohorts if c.status == "closed"]
        if phase2 is not None:
            return
        reason = "safety review done"
        if open_:
            work: Callable[[Session], Any] = lambda s: stages.change_cohort(  # noqa: E731
                s,
                study=self.study,
                actor=actor_of(s, "sponsor"),
                code=open_[0],
                action="close",
                reason=reason,
            )
        elif planned and len(closed) < 2:
            work = lambda s: stages.change_cohort(  # noqa: E731
                s,
                study=self.study,
                actor=actor_of(s, "sponsor"),
                code=planned[0],
                action="open",
                reason=reason,
            )
        else:
            dose = closed[0].dose_mg_per_kg
            work = lambda s: stages.select_phase2_dose(  # noqa: E731
                s, study=self.study, actor=actor_of(s, "sponsor"), dose=dose, reason=reason
            )
        self._do("advance", work)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        with self.db.read() as session:
            self._check_randomizations(session)
            self._check_dispensed_kits(session)
            self._check_kit_accounting(session)
            report = audit.verify(session)
            assert report.ok, report

    def _check_randomizations(self, session: Session) -> None:
        per_subject = Counter(session.execute(select(Randomization.subject_id)).scalars())
        assert all(n == 1 for n in per_subject.values()), per_subject
        randomized = set(
            session.execute(select(Subject.id).where(Subject.status != "registered")).scalars()
        )
        assert randomized == set(per_subject), (randomized, per_subject)
        slots = list(session.execute(select(Randomization.slot_id)).scalars())
        assert len(slots) == len(set(slots)), slots
        used: dict[tuple[str, str], list[int]] = {}
        for scope, stratum, slot_stratum, sequence in session.execute(
            select(Randomization.scope, Randomization.stratum, Slot.stratum, Slot.sequence)
            .join(Slot, Slot.id == Randomization.slot_id)
            .join(RandomizationList, RandomizationList.id == Slot.list_id)
            .where(RandomizationList.scope == Randomization.scope)
        ).all():
            assert stratum == slot_stratum, (scope, stratum, slot_stratum)
            used.setdefault((scope, stratum), []).append(sequence)
        assert sum(len(v) for v in used.values()) == len(slots), "a slot of another list"
        for key, sequences in used.items():
            assert sorted(sequences) == list(range(1, len(sequences) + 1)), (key, sequences)

    def _check_dispensed_kits(self, session: Session) -> None:
        rows = session.execute(
            select(
                DispensedKit.kit_number,
                DispensedKit.replaced_at,
                Dispensing.visit_date,
                Kit.content,
                Kit.expiry_date,
                Kit.status,
                Kit.site_id,
                Subject.site_id,
                Slot.arm,
            )
            .join(Dispensing, Dispensing.id == DispensedKit.dispensing_id)
            .join(Kit, Kit.kit_number == DispensedKit.kit_number)
            .join(Subject, Subject.id == Dispensing.subject_id)
            .join(Randomization, Randomization.subject_id == Subject.id)
            .join(Slot, Slot.id == Randomization.slot_id)
        ).all()
        numbers = [r[0] for r in rows]
        assert len(numbers) == len(set(numbers)), "a kit dispensed twice"
        window = timedelta(days=self.study.supply.do_not_dispense_days)
        for number, replaced, visit_date, content, expiry, status, kit_site, site, arm in rows:
            assert content == arm, f"kit {number} holds {content}, the subject's arm is {arm}"
            # the window holds on the visit date and on the day of hand-out (today here)
            assert expiry > max(visit_date, self.today) + window, (number, expiry, visit_date)
            assert kit_site == site, (number, kit_site, site)
            expected = {"dispensed"} if replaced is None else {"damaged", "lost"}
            assert status in expected, (number, status, replaced)
        dispensed = set(
            session.execute(
                select(Kit.kit_number).where(Kit.status == KitStatus.DISPENSED.value)
            ).scalars()
        )
        assert dispensed == {r[0] for r in rows if r[1] is None}

    def _check_kit_accounting(self, session: Session) -> None:
        in_shipments: dict[str, list[tuple[str, str]]] = {}
        for number, site, status in session.execute(
            select(ShipmentKit.kit_number, Shipment.site_id, Shipment.status)
            .join(Shipment, Shipment.id == ShipmentKit.shipment_id)
            .where(Shipment.status != "cancelled")
        ).all():
            in_shipments.setdefault(number, []).append((site, status))
        for number, placed in in_shipments.items():
            assert len(placed) == 1, f"kit {number} is in {placed}"
        for number, status, site in session.execute(
            select(Kit.kit_number, Kit.status, Kit.site_id)
        ).all():
            shipment = in_shipments.get(number, [None])[0]
            if site is None:  # at the depot, perhaps picked for a requested shipment
                assert status in {"at_depot", "quarantined", "damaged", "lost", "expired"}, (
                    number,
                    status,
                )
                assert shipment is None or shipment[1] == "requested", (number, shipment)
                continue
            assert shipment is not None and shipment[0] == site, (number, site, shipment)
            if shipment[1] == "shipped":
                assert status == "in_transit", (number, status, shipment)
            else:
                assert shipment[1] in {"received", "quarantined", "rejected"}, (number, shipment)
                assert status not in {"at_depot", "in_transit"}, (number, status, shipment)
        for line in inventory.reconciliation(session, self.study):
            assert line["balance"] == 0, line


Copies = Callable[[], tuple[Database, Callable[[], None]]]


def demo_copies(db_url: str) -> Copies:
    """Set up the demo once in `db_url`; the answer makes a fresh copy of it (and its drop)."""
    template = Database(db_url)
    set_up_demo(
        template,
        study=load_study(),
        password=DEMO_PASSWORD,
        seed=DEMO_SEED,
        kits_per_content=60,
        site_levels=(2, 5),
        in_transit_site="DE02",
    )
    template.dispose()  # a file copy or a TEMPLATE needs it idle
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        source = Path(str(url.database))

        def copy_sqlite() -> tuple[Database, Callable[[], None]]:
            path = source.with_name(f"example-{uuid.uuid4().hex[:8]}.db")
            shutil.copy(source, path)
            return Database(f"sqlite:///{path}"), path.unlink

        return copy_sqlite

    def copy_postgresql() -> tuple[Database, Callable[[], None]]:
        copy = f"irt_x_{uuid.uuid4().hex[:12]}"
        with pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"')

        def drop() -> None:
            with pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')

        return Database(pg_url(copy)), drop

    return copy_postgresql


@pytest.mark.timeout(600)
def test_trial_state_machine(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispensing, "_rng", random.Random(0))  # restored after the test
    machine = type(
        "TrialOnEngine",
        (Trial,),
        {"make_db": staticmethod(demo_copies(db_url)), "study": load_study()},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: each try copies a database
            suppress_health_check=list(HealthCheck),
        ),
    )
