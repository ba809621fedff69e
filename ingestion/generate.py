"""Synthetic TripClick click logs, deterministic for a seed.

    python -m ingestion.generate [--days N] [--start YYYY-MM-DD] [--events-per-day N] [--seed S]
                                 [--out DIR] [--duplicates N] [--malformed N] [--prepared]

Without --prepared it writes raw day files `<OUT>/YYYY-MM-DD.json` in the dataset's format (then
`python -m ingestion.prepare` maps them onto the replay timeline). With --prepared the same lines go
straight through the preparation step into `<OUT>/server{0,1}/date=YYYY-MM-DD/events.json`, each
generated day becoming the same target day (ready to produce).

Realism: sessions of several clicks spaced like reading time, a daily traffic curve, Zipf-like
document popularity over a fixed catalog whose titles, URLs, DOIs and clinical areas are stable per
document, session query keywords, empty DOI and Keywords at realistic rates. --duplicates and
--malformed insert exactly that many extra lines into every day file.
"""
from __future__ import annotations

import argparse
import itertools
import random
import sys
import time as clock
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

import orjson

from infrastructure.settings import load
from ingestion.prepare import REJECTS_FILE, Preparer, Timeline, iso_day, report
from ingestion.progress import Progress

DEFAULT_EVENTS_PER_DAY = 160_000
CATALOG_SIZE = 200_000
ZIPF_EXPONENT = 1.05
DOI_RATE = 0.45
EMPTY_AREAS_RATE = 0.06
EMPTY_KEYWORDS_RATE = 0.30
MEAN_EXTRA_CLICKS = 2.0  # clicks per session = 1 + geometric extra clicks
MEAN_CLICK_GAP_S = 45.0
SESSION_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz012345"  # ASP.NET session id characters

# Trip's clinical areas with a few conditions each (keywords and titles come from these).
CLINICAL_AREAS: dict[str, tuple[str, ...]] = {
    "Primary Care": ("hypertension", "low back pain", "otitis media", "urinary tract infection"),
    "Cardiology": ("atrial fibrillation", "heart failure", "myocardial infarction", "angina"),
    "Oncology": ("breast cancer", "prostate cancer", "lung cancer", "colorectal cancer"),
    "Pediatrics": ("bronchiolitis", "febrile seizures", "childhood asthma", "neonatal jaundice"),
    "Emergency Medicine": ("sepsis", "anaphylaxis", "head injury", "chest pain"),
    "OB-Gyn": ("pre-eclampsia", "gestational diabetes", "endometriosis", "postpartum haemorrhage"),
    "Surgery": ("appendicitis", "hernia repair", "surgical site infection", "tissue morcellation"),
    "Psychiatry": ("depression", "schizophrenia", "bipolar disorder", "anxiety disorder"),
    "Infectious Disease": ("influenza", "tuberculosis", "hepatitis C", "cellulitis"),
    "Neurology": ("stroke", "migraine", "epilepsy", "Parkinson's disease"),
    "Endocrinology": ("type 2 diabetes", "hypothyroidism", "osteoporosis", "obesity"),
    "Respiratory": ("COPD", "asthma", "community-acquired pneumonia", "sleep apnoea"),
    "Gastroenterology": ("Crohn's disease", "GERD", "irritable bowel syndrome", "cirrhosis"),
    "Geriatrics": ("dementia", "falls prevention", "delirium", "frailty"),
    "Nursing": ("pressure ulcers", "hand hygiene", "wound care", "medication errors"),
    "Rheumatology": ("rheumatoid arthritis", "gout", "osteoarthritis", "lupus"),
    "Dermatology": ("psoriasis", "atopic eczema", "acne", "melanoma"),
    "Nephrology": ("chronic kidney disease", "acute kidney injury", "dialysis", "hyperkalaemia"),
    "Ophthalmology": ("glaucoma", "macular degeneration", "cataract", "diabetic retinopathy"),
    "Urology": ("benign prostatic hyperplasia", "kidney stones", "urinary incontinence", "erectile dysfunction"),
    "Anaesthesia": ("postoperative nausea", "spinal anaesthesia", "airway management", "sedation"),
    "Intensive Care": ("ARDS", "mechanical ventilation", "ICU delirium", "septic shock"),
    "Haematology": ("anaemia", "venous thromboembolism", "sickle cell disease", "lymphoma"),
    "Public Health": ("smoking cessation", "vaccination uptake", "alcohol misuse", "screening"),
    "Dentistry": ("dental caries", "periodontitis", "tooth extraction", "fluoride varnish"),
}
AREA_NAMES = tuple(CLINICAL_AREAS)
AREA_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(AREA_NAMES))))
INTERVENTIONS = ("Aspirin", "Statins", "Exercise therapy", "Cognitive behavioural therapy", "Antibiotics",
                 "Vitamin D supplementation", "Early mobilisation", "Telemonitoring", "Corticosteroids",
                 "Physiotherapy", "Metformin", "Acupuncture", "Nurse-led care", "Probiotics")
DESIGNS = ("a systematic review", "a randomised controlled trial", "clinical guideline", "a meta-analysis",
           "a cohort study", "evidence summary", "a Cochrane review")
POPULATIONS = ("adults", "children", "older people", "pregnant women", "primary care patients")
PUBLISHERS = ("https://www.nice.org.uk/guidance/ng{n}", "https://www.cochranelibrary.com/cdsr/CD{n}",
              "https://pubmed.ncbi.nlm.nih.gov/{n}/", "https://www.bmj.com/content/{n}",
              "https://www.sign.ac.uk/guidance/{n}.pdf", "https://www.ahrq.gov/reports/{n}.html")
# Share of sessions starting in each UTC hour: quiet nights, European and American working days.
HOURLY_WEIGHTS = tuple(itertools.accumulate(
    (2, 1.5, 1.2, 1, 1, 1.2, 2, 3.5, 5.5, 7, 7.5, 7.5, 7, 7.5, 8, 8, 7.5, 6.5, 5.5, 4.5, 4, 3.5, 3, 2.5)))


@dataclass(frozen=True)
class Document:
    document_id: int
    url: str
    title: str
    doi: str
    clinical_areas: str


def document_id_for(rank: int) -> int:
    """A Trip-like 7-digit id; multiplication by a prime modulo 9,000,000 keeps ranks distinct."""
    return 1_000_000 + (rank * 2_654_435_761) % 9_000_000


@lru_cache(maxsize=CATALOG_SIZE)
def document(rank: int) -> Document:
    """The catalog entry of a popularity rank; stable across seeds and runs."""
    rng = random.Random(f"tripclick-document-{rank}")
    areas = [rng.choices(AREA_NAMES, cum_weights=AREA_WEIGHTS)[0]]
    if rng.random() < 0.3:
        second = rng.choice(AREA_NAMES)
        if second != areas[0]:
            areas.append(second)
    condition = rng.choice(CLINICAL_AREAS[areas[0]])
    title = rng.choice((
        f"{rng.choice(INTERVENTIONS)} for {condition}: {rng.choice(DESIGNS)}",
        f"Management of {condition} in {rng.choice(POPULATIONS)}",
        f"{condition[0].upper()}{condition[1:]}: diagnosis and treatment",
        f"{rng.choice(INTERVENTIONS)} versus usual care in {condition}",
    ))
    number = rng.randrange(10_000, 99_999_999)
    doi = f"10.{rng.randrange(1000, 9999)}/{areas[0][:4].lower()}.{number}" if rng.random() < DOI_RATE else ""
    clinical_areas = "" if rng.random() < EMPTY_AREAS_RATE else "," + ",".join(areas)
    return Document(document_id_for(rank), rng.choice(PUBLISHERS).format(n=number), title, doi, clinical_areas)


ZIPF_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(CATALOG_SIZE)))
RANKS = range(CATALOG_SIZE)


def session_keywords(rng: random.Random) -> str:
    if rng.random() < EMPTY_KEYWORDS_RATE:
        return ""
    condition = rng.choice(CLINICAL_AREAS[rng.choices(AREA_NAMES, cum_weights=AREA_WEIGHTS)[0]])
    return condition if rng.random() < 0.6 else f"{condition} {rng.choice(INTERVENTIONS).lower()}"


def day_clicks(rng: random.Random, day: date, events: int) -> list[tuple[int, int, str, int, str]]:
    """`events` clicks of one UTC day as (ms since epoch, sequence, session id, rank, keywords), in time order."""
    day_start_ms = int(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).timestamp() * 1000)
    day_end_ms = day_start_ms + 86_400_000
    clicks: list[tuple[int, int, str, int, str]] = []
    while len(clicks) < events:
        session_id = "".join(rng.choices(SESSION_ID_ALPHABET, k=24))
        keywords = session_keywords(rng)
        hour = rng.choices(range(24), cum_weights=HOURLY_WEIGHTS)[0]
        moment = day_start_ms + hour * 3_600_000 + rng.randrange(3_600_000)
        extra = int(rng.expovariate(1 / MEAN_EXTRA_CLICKS))
        for _ in range(min(1 + extra, events - len(clicks))):
            if moment >= day_end_ms:
                break  # a session is cut at midnight: the next day is another file
            rank = rng.choices(RANKS, cum_weights=ZIPF_WEIGHTS)[0]
            clicks.append((moment, len(clicks), session_id, rank, keywords))
            moment += 2_000 + int(rng.expovariate(1 / MEAN_CLICK_GAP_S) * 1000)
    clicks.sort()
    return clicks


def raw_line(moment_ms: int, session_id: str, rank: int, keywords: str) -> bytes:
    doc = document(rank)
    return orjson.dumps({
        "DateCreated": f"/Date({moment_ms})/",
        "SessionId": session_id,
        "DocumentId": doc.document_id,
        "Url": doc.url,
        "Title": doc.title,
        "DOI": doc.doi,
        "ClinicalAreas": doc.clinical_areas,
        "Keywords": keywords,
        "Documents": [],
    })


def malformed_line(kind: int, valid: bytes) -> bytes:
    """One of the bad-line kinds preparation and the producer must reject, chosen round-robin."""
    record = orjson.loads(valid)
    variants = (
        lambda: valid[: len(valid) // 2],  # truncated JSON
        lambda: valid.replace(b'"Title":"', b'"Title":"\xff\xfe', 1),  # not UTF-8
        lambda: orjson.dumps({k: v for k, v in record.items() if k != "SessionId"}),
        lambda: orjson.dumps({**record, "DateCreated": "2026-01-01 10:00:00"}),
        lambda: orjson.dumps({**record, "DocumentId": "not-a-number"}),
        lambda: orjson.dumps({k: v for k, v in record.items() if k != "DocumentId"}),
        lambda: orjson.dumps([record["SessionId"], record["DocumentId"]]),  # JSON, but not an object
    )
    return variants[kind % len(variants)]()


def day_lines(seed: int, day: date, events: int, duplicates: int, malformed: int) -> Iterator[bytes]:
    """The raw lines of one day: `events` clicks plus exactly `duplicates` and `malformed` extra lines."""
    rng = random.Random(f"tripclick-day-{seed}-{day.isoformat()}")
    lines = [raw_line(moment, session_id, rank, keywords) for moment, _, session_id, rank, keywords
             in day_clicks(rng, day, events)]
    if not lines and (duplicates or malformed):
        raise ValueError("duplicates and malformed lines need at least one event per day")
    # Extras are inserted right after a chosen line (positions drawn up front; ties keep their order).
    extras: dict[int, list[bytes]] = {}
    for position in sorted(rng.randrange(len(lines)) for _ in range(duplicates)):
        extras.setdefault(position, []).append(lines[position])
    for kind in range(malformed):
        position = rng.randrange(len(lines))
        extras.setdefault(position, []).append(malformed_line(kind, lines[position]))
    for position, line in enumerate(lines):
        yield line
        yield from extras.get(position, ())


def generate(out_dir: Path, start: date, days: int, events_per_day: int, seed: int, duplicates: int = 0,
             malformed: int = 0, preparer: Preparer | None = None) -> int:
    """Write raw day files (or feed `preparer`); returns the number of lines produced."""
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress("generate", total=days * (events_per_day + duplicates + malformed))
    total = 0
    for offset in range(days):
        day = start + timedelta(days=offset)
        source = f"{day.isoformat()}.json"
        if preparer:
            for number, line in enumerate(day_lines(seed, day, events_per_day, duplicates, malformed), start=1):
                preparer.add(line, source, number)
                progress.advance()
                total += 1
            continue
        partial = out_dir / f"{source}.partial"
        with partial.open("wb") as out:
            for line in day_lines(seed, day, events_per_day, duplicates, malformed):
                out.write(line + b"\n")
                progress.advance()
                total += 1
        partial.replace(out_dir / source)
    progress.close()
    return total


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def main(argv: Iterable[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(prog="python -m ingestion.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=non_negative, default=32, help="number of days (default 32)")
    parser.add_argument("--start", type=iso_day, default=date(2026, 1, 1), help="first day (default 2026-01-01)")
    parser.add_argument("--events-per-day", type=non_negative, default=DEFAULT_EVENTS_PER_DAY)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="output folder (default DATA_DIR with --prepared, else "
                                                 "DATA_DIR/raw)")
    parser.add_argument("--duplicates", type=non_negative, default=0, help="exact duplicate lines per day")
    parser.add_argument("--malformed", type=non_negative, default=0, help="malformed lines per day")
    parser.add_argument("--prepared", action="store_true", help="write ready-to-produce day files per server")
    args = parser.parse_args(argv)
    out_dir = args.out or (settings.data_dir if args.prepared else settings.data_dir / "raw")
    started = clock.monotonic()
    try:
        if not args.prepared:
            lines = generate(out_dir, args.start, args.days, args.events_per_day, args.seed, args.duplicates,
                             args.malformed)
            print("generate: " + orjson.dumps({"days": args.days, "lines": lines, "out": str(out_dir),
                                                "elapsed_s": round(clock.monotonic() - started, 3)}).decode())
            return 0
        last_day = args.start + timedelta(days=max(args.days, 1) - 1)
        timeline = Timeline(args.start, last_day, args.start, last_day, ZoneInfo(settings.pipeline_tz))
        rejects_path = out_dir / REJECTS_FILE
        preparer = Preparer(out_dir, timeline, rejects_path)
        generate(out_dir, args.start, args.days, args.events_per_day, args.seed, args.duplicates, args.malformed,
                 preparer)
        report(preparer.finish(), clock.monotonic() - started, rejects_path)
    except (OSError, ValueError) as error:
        print(f"generate: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
