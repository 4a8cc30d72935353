"""The embedded tables: deterministic churn (binary), delivery-time (regression) and review
sentiment (multiclass text) data with drift scenarios, read as
`sample:<name>?rows=…&seed=…&scenario=…`.

Nothing is downloaded: every row comes from a seeded NumPy generator, so the same
`(rows, seed, scenario)` gives the same frame (and the same Parquet bytes) on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowship.errors import DataValidationError

if TYPE_CHECKING:  # imported where the tables are generated: the CLI's parser reads SCENARIOS
    import numpy as np
    import pandas as pd

SCENARIOS = ("baseline", "price_increase", "new_region", "concept_shift", "missing_surge")
TARGET = "churned"
ID_COLUMN = "customer_id"
NUMERIC_FEATURES = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "age",
)
CATEGORICAL_FEATURES = ("contract", "internet_service", "payment_method", "region")

_REGIONS = (("north", 0.30), ("south", 0.25), ("east", 0.25), ("west", 0.20))
_CONTRACTS = (("month_to_month", 0.50), ("one_year", 0.30), ("two_year", 0.20))
_INTERNET = (("fiber", 0.45), ("dsl", 0.35), ("none", 0.20))
_PAYMENT = (
    ("electronic_check", 0.35),
    ("credit_card", 0.25),
    ("bank_transfer", 0.25),
    ("mailed_check", 0.15),
)
_AS_OF = "2026-01-01"  # signup dates count back from here
NEW_REGION = "central"
_NEW_REGION_SHARE = 0.35
_PRICE_FACTOR, _PRICE_SHIFT = 1.25, 8.0
_SURGE_COLUMNS = ("monthly_charges", "tenure_months", "payment_method")
_SURGE_SHARE = 0.45


def _choice(rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    import numpy as np

    names = np.array([o[0] for o in options], dtype=object)
    return names[rng.choice(len(options), size=n, p=[o[1] for o in options])]


def generate_churn(rows: int, seed: int = 7, scenario: str = "baseline") -> pd.DataFrame:
    """Generate a churn table.

    Args:
        rows: number of customers (rows), at least 1.
        seed: seed of the generator; ids embed it so tables with other seeds never collide.
        scenario: `baseline`, or a drift scenario for monitoring: `price_increase` (charges
            shift up), `new_region` (a region never seen in training), `concept_shift` (DSL
            customers churn for other reasons), `missing_surge` (several columns go missing).

    Returns:
        One row per customer: an id, a signup date, numeric and categorical features with
        some missing values, and the binary target `churned` (about a quarter positive).
    """
    import numpy as np
    import pandas as pd

    if scenario not in SCENARIOS:
        raise DataValidationError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}"
        )
    if rows < 1:
        raise DataValidationError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    n = rows

    region = _choice(rng, _REGIONS, n)
    contract = _choice(rng, _CONTRACTS, n)
    internet = _choice(rng, _INTERNET, n)
    payment = _choice(rng, _PAYMENT, n)
    mtm = contract == "month_to_month"
    two_year = contract == "two_year"
    fiber = internet == "fiber"
    dsl = internet == "dsl"

    tenure_scale = np.where(two_year, 40.0, np.where(mtm, 12.0, 24.0))
    tenure = np.clip(np.ceil(rng.exponential(tenure_scale)), 1, 72).astype(np.int64)
    products = np.clip(rng.poisson(1.3, n) + 1, 1, 6).astype(np.int64)
    base_price = np.where(fiber, 80.0, np.where(dsl, 55.0, 25.0))
    monthly = np.round(base_price + 7.5 * (products - 1) + rng.normal(0, 8, n), 2)
    monthly = np.maximum(monthly, 10.0)
    total = np.round(monthly * tenure * rng.uniform(0.92, 1.05, n), 2)
    support = rng.poisson(np.where(fiber, 1.6, 0.9)).astype(np.int64)
    age = np.clip(np.round(rng.normal(45, 14, n)), 18, 90)

    logit = (
        -2.15
        + 1.35 * mtm
        - 0.9 * two_year
        - 0.045 * tenure
        + 1.1 * (fiber & (monthly > 85))
        + 0.75 * np.maximum(support - 2, 0)
        + 0.5 * (payment == "electronic_check")
        - 0.3 * (products - 1)
        + 0.02 * (monthly - 60)
        + 0.7 * (age < 26)
        + 0.45 * (mtm & (tenure < 6))
    )
    if scenario == "concept_shift":
        # DSL customers now leave for other reasons: tenure no longer protects them, and
        # anyone who rang support or pays by mailed check is very likely to go.
        shifted = -1.2 + 0.02 * tenure + 1.3 * (support >= 1) + 1.5 * (payment == "mailed_check")
        logit = np.where(dsl, shifted, logit)
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    if scenario == "price_increase":
        monthly = np.round(monthly * _PRICE_FACTOR + _PRICE_SHIFT, 2)
        total = np.round(total * _PRICE_FACTOR, 2)
    if scenario == "new_region":
        region = np.where(rng.random(n) < _NEW_REGION_SHARE, NEW_REGION, region)

    signup = np.datetime64(_AS_OF) - tenure.astype("timedelta64[M]").astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            ID_COLUMN: [f"C{seed:05d}-{i:07d}" for i in range(n)],
            "signup_date": signup.astype("datetime64[s]"),
            "tenure_months": tenure.astype(np.float64),
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support,
            "num_products": products,
            "age": age,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "region": region,
            TARGET: churned,
        }
    )
    # Realistic gaps: some total charges and ages are unknown.
    frame.loc[rng.random(n) < 0.02, "total_charges"] = np.nan
    frame.loc[rng.random(n) < 0.03, "age"] = np.nan
    if scenario == "missing_surge":
        for column in _SURGE_COLUMNS:
            frame.loc[rng.random(n) < _SURGE_SHARE, column] = None
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].astype("object")
    return frame


# ---- delivery times (regression): how long an order takes to reach the customer

DELIVERY_SCENARIOS = ("baseline", "long_distance", "new_city", "concept_shift", "missing_surge")
DELIVERY_TARGET = "delivery_minutes"
DELIVERY_ID = "order_id"
DELIVERY_NUMERIC = ("distance_km", "items", "basket_value", "prep_minutes", "hour", "rating")
DELIVERY_CATEGORICAL = ("city", "vehicle", "weather")
_CITIES = (("center", 0.40), ("north", 0.25), ("riverside", 0.20), ("hills", 0.15))
_VEHICLES = (("bike", 0.45), ("scooter", 0.35), ("car", 0.20))
_WEATHER = (("clear", 0.65), ("rain", 0.28), ("snow", 0.07))
NEW_CITY = "harbour"
_NEW_CITY_SHARE = 0.35
_DISTANCE_FACTOR = 1.7


def generate_delivery(rows: int, seed: int = 7, scenario: str = "baseline") -> pd.DataFrame:
    """Generate a delivery-time table.

    Args:
        rows: number of orders (rows), at least 1.
        seed: seed of the generator; ids embed it so tables with other seeds never collide.
        scenario: `baseline`, or a drift scenario for monitoring: `long_distance` (a suburban
            area: orders come from much further away, by car, with more items), `new_city` (a
            city never seen in training), `concept_shift` (road works: in the center and in
            the rain deliveries now take much longer for the same order), `missing_surge`
            (several columns go missing).

    Returns:
        One row per order: an id, the order time, numeric and categorical features with some
        missing values, and the target `delivery_minutes` (about 15 to 90 minutes).
    """
    import numpy as np
    import pandas as pd

    if scenario not in DELIVERY_SCENARIOS:
        raise DataValidationError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(DELIVERY_SCENARIOS)}"
        )
    if rows < 1:
        raise DataValidationError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng([seed, 100 + DELIVERY_SCENARIOS.index(scenario)])
    n = rows
    city = _choice(rng, _CITIES, n)
    vehicle = _choice(rng, _VEHICLES, n)
    weather = _choice(rng, _WEATHER, n)
    distance = np.clip(rng.gamma(2.0, 1.8, n), 0.3, 25.0)
    items = np.clip(rng.poisson(2.5, n) + 1, 1, 15).astype(np.int64)
    if scenario == "long_distance":
        # a new suburban area: orders come from far away, by car, and are bigger
        distance = np.clip(distance * _DISTANCE_FACTOR + 1.5, 0.3, 40.0)
        vehicle = np.where(rng.random(n) < 0.6, "car", vehicle)
        items = items + rng.poisson(1.5, n)
    basket = np.round(items * rng.uniform(6, 18, n) + rng.normal(0, 4, n), 2).clip(3, None)
    prep = np.clip(rng.normal(9 + 0.9 * items, 3.0), 3, 40)
    hour = rng.choice(24, size=n, p=_hour_weights()).astype(np.int64)
    rating = np.round(np.clip(rng.normal(4.5, 0.3, n), 3.0, 5.0), 1)
    speed = np.select([vehicle == "bike", vehicle == "scooter"], [3.4, 2.4], 2.0)  # min per km
    rush = ((hour >= 11) & (hour <= 13)) | ((hour >= 18) & (hour <= 20))
    city_delay = np.select([city == "center", city == "hills"], [4.0, 6.0], 1.5)
    weather_delay = np.select([weather == "rain", weather == "snow"], [1.15, 1.45], 1.0)
    minutes = (
        6.0
        + prep
        + distance * speed * weather_delay
        + city_delay
        + 7.0 * rush * (city == "center")
        + 4.0 * rush
        - 2.0 * (rating - 4.5)
        + rng.normal(0, 3.0, n)
    )
    if scenario == "concept_shift":
        # Road works: in the center and in the rain every kilometre now takes far longer.
        slowed = (city == "center") | (weather == "rain")
        minutes = minutes + slowed * (9.0 + 2.2 * distance)
    if scenario == "new_city":
        city = np.where(rng.random(n) < _NEW_CITY_SHARE, NEW_CITY, city)
    start = np.datetime64("2026-01-01T00:00:00") + rng.integers(0, 90 * 24 * 60, n).astype(
        "timedelta64[m]"
    )
    frame = pd.DataFrame(
        {
            DELIVERY_ID: [f"O{seed:05d}-{i:07d}" for i in range(n)],
            "ordered_at": start.astype("datetime64[s]"),
            "distance_km": np.round(distance, 2),
            "items": items,
            "basket_value": basket,
            "prep_minutes": np.round(prep, 1),
            "hour": hour,
            "rating": rating,
            "city": city,
            "vehicle": vehicle,
            "weather": weather,
            DELIVERY_TARGET: np.round(minutes, 1),
        }
    )
    frame.loc[rng.random(n) < 0.03, "rating"] = np.nan  # new customers have no rating yet
    if scenario == "missing_surge":
        for column in ("distance_km", "prep_minutes", "weather"):
            frame.loc[rng.random(n) < _SURGE_SHARE, column] = None
    for column in DELIVERY_CATEGORICAL:
        frame[column] = frame[column].astype("object")
    return frame


def _hour_weights() -> list[float]:
    """Orders by hour of day: lunch and dinner peaks, quiet nights."""
    weights = [0.2] * 6 + [0.6, 1.0, 1.2, 1.2, 1.6, 3.0, 3.2, 2.4, 1.4, 1.2, 1.4, 2.2, 3.4]
    weights += [3.6, 2.8, 1.6, 0.8, 0.4]
    total = sum(weights)
    return [w / total for w in weights]


# ---- customer reviews (multiclass text): the sentiment of a product review

REVIEW_SCENARIOS = ("baseline", "new_product_line", "tone_shift", "missing_surge")
REVIEW_TARGET = "sentiment"
REVIEW_ID = "review_id"
REVIEW_CLASSES = ("negative", "neutral", "positive")
_CATEGORIES = (("electronics", 0.35), ("books", 0.25), ("home", 0.25), ("clothing", 0.15))
_NOUNS = {
    "electronics": ("battery", "screen", "charger", "headphones", "speaker", "remote"),
    "books": ("story", "author", "plot", "characters", "ending", "translation"),
    "home": ("lamp", "blender", "kettle", "pillow", "shelf", "vacuum"),
    "clothing": ("jacket", "fabric", "size", "shoes", "stitching", "zipper"),
    "garden": ("hose", "mower", "seeds", "planter", "trowel", "sprinkler"),
}
_WORDS = {
    "positive": (
        "love it",
        "excellent",
        "works perfectly",
        "highly recommend",
        "fantastic",
        "sturdy",
        "arrived quickly",
        "worth every penny",
        "delighted",
        "great value",
    ),
    "neutral": (
        "okay",
        "average",
        "does the job",
        "as expected",
        "nothing special",
        "fine for the price",
        "mixed feelings",
        "decent enough",
    ),
    "negative": (
        "broke quickly",
        "terrible",
        "waste of money",
        "disappointed",
        "stopped working",
        "poor quality",
        "asked for a refund",
        "awful",
        "cheap plastic",
        "never again",
    ),
}
# A new product line brings words the model has never seen.
_GARDEN_WORDS = {
    "positive": ("blooms beautifully", "thriving plants", "lush lawn"),
    "neutral": ("seasonal", "weatherproof enough"),
    "negative": ("wilted in a week", "rusted", "leaks everywhere"),
}
_OPENERS = ("I bought it,", "We ordered it:", "Got it as a gift,", "After a month,", "Honestly,")
_FILLERS = ("", "Delivery was on time.", "Packaging was plain.", "Would buy again?", "")


def generate_reviews(rows: int, seed: int = 7, scenario: str = "baseline") -> pd.DataFrame:
    """Generate a product-review table.

    Args:
        rows: number of reviews (rows), at least 1.
        seed: seed of the generator; ids embed it so tables with other seeds never collide.
        scenario: `baseline`, or a drift scenario for monitoring: `new_product_line` (a
            garden line whose reviews use words never seen in training), `tone_shift`
            (sarcasm: unhappy customers write praise words, "excellent, broke quickly"),
            `missing_surge` (many reviews come without text).

    Returns:
        One row per review: an id, the posting date, the product category, the star rating,
        whether the purchase is verified, the review text, and its `sentiment` (negative,
        neutral or positive; about half positive).
    """
    import numpy as np
    import pandas as pd

    if scenario not in REVIEW_SCENARIOS:
        raise DataValidationError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(REVIEW_SCENARIOS)}"
        )
    if rows < 1:
        raise DataValidationError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng([seed, 200 + REVIEW_SCENARIOS.index(scenario)])
    n = rows
    sentiment = rng.choice(REVIEW_CLASSES, size=n, p=[0.3, 0.2, 0.5])
    category = _choice(rng, _CATEGORIES, n)
    if scenario == "new_product_line":
        category = np.where(rng.random(n) < 0.4, "garden", category)
    base = {"negative": 1.6, "neutral": 3.0, "positive": 4.4}
    stars = np.clip(np.round(np.array([base[s] for s in sentiment]) + rng.normal(0, 0.7, n)), 1, 5)
    texts = []
    for label, cat in zip(sentiment, category, strict=True):
        words = _GARDEN_WORDS if cat == "garden" else _WORDS
        said = label
        if scenario == "tone_shift" and label == "negative" and rng.random() < 0.7:
            said = "positive"  # sarcasm: praise words, then the complaint
        phrases = list(rng.choice(words[said], size=int(rng.integers(1, 3)), replace=False))
        if said != label:
            phrases.append(str(rng.choice(_WORDS["negative"][:3])))
        noun = str(rng.choice(_NOUNS[cat]))
        opener = str(rng.choice(_OPENERS))
        filler = str(rng.choice(_FILLERS))
        texts.append(f"{opener} the {noun}: {', '.join(phrases)}. {filler}".strip())
    start = np.datetime64("2026-01-01") + rng.integers(0, 120, n).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            REVIEW_ID: [f"R{seed:05d}-{i:07d}" for i in range(n)],
            "posted_on": start,
            "category": category,
            "stars": stars,
            "verified": rng.random(n) < 0.8,
            "review": texts,
            REVIEW_TARGET: sentiment,
        }
    )
    noise = rng.random(n) < 0.04  # some reviews disagree with their own words
    frame.loc[noise, REVIEW_TARGET] = rng.choice(REVIEW_CLASSES, size=int(noise.sum()))
    gaps = 0.45 if scenario == "missing_surge" else 0.02
    frame.loc[rng.random(n) < gaps, "review"] = None
    for column in ("category", "review", REVIEW_TARGET):
        frame[column] = frame[column].astype("object")
    return frame


@dataclass(frozen=True)
class SampleTable:
    """One embedded table: its generator, scenarios, target and id column."""

    name: str
    generate: Callable[[int, int, str], pd.DataFrame]
    scenarios: tuple[str, ...]
    target: str
    id_column: str
    shift_scenario: str  # the scenario the demo loop uses to make the champion decay


SAMPLES: dict[str, SampleTable] = {
    t.name: t
    for t in (
        SampleTable("churn", generate_churn, SCENARIOS, TARGET, ID_COLUMN, "concept_shift"),
        SampleTable(
            "delivery",
            generate_delivery,
            DELIVERY_SCENARIOS,
            DELIVERY_TARGET,
            DELIVERY_ID,
            "concept_shift",
        ),
        SampleTable(
            "reviews",
            generate_reviews,
            REVIEW_SCENARIOS,
            REVIEW_TARGET,
            REVIEW_ID,
            "new_product_line",
        ),
    )
}
ALL_SCENARIOS = tuple(dict.fromkeys(s for t in SAMPLES.values() for s in t.scenarios))


def sample_table(name: str) -> SampleTable:
    """The embedded table called `name`.

    Raises:
        DataValidationError: no such table (the message lists them).
    """
    if name not in SAMPLES:
        raise DataValidationError(
            f"unknown sample dataset {name!r}; the embedded ones are {', '.join(SAMPLES)}"
        )
    return SAMPLES[name]


def write_sample(
    path: str | Path, rows: int, seed: int = 7, scenario: str = "baseline", table: str = "churn"
) -> Path:
    """Write a generated table to `.parquet` or `.csv` (chosen by the suffix)."""
    path = Path(path)
    frame = sample_table(table).generate(rows, seed, scenario)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise DataValidationError(
            f"unsupported output {path.name!r}: use a .parquet or .csv file name"
        )
    return path
