"""The training table: its schema inferred from the config, its values validated, split and
hashed. Reading the source is `flowship.sources`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flowship.config import DataSettings
from flowship.errors import DataValidationError
from flowship.schema import Label, Schema, category_text, native_label
from flowship.sources import read_source
from flowship.tasks import choose_task


@dataclass(frozen=True)
class LoadedData:
    """A validated table with its schema and content fingerprint, and the rows left out
    because their target was missing or not a finite number."""

    frame: pd.DataFrame
    schema: Schema
    fingerprint: str
    dropped_rows: int = 0


def infer_schema(frame: pd.DataFrame, settings: DataSettings) -> Schema:
    """Resolve the feature lists (given or inferred from dtypes) and the target's classes.

    Raises:
        DataValidationError: a configured column is missing, or the target is unusable.
    """
    _require_columns(frame, settings)
    target = frame[settings.target]
    limit = "(up to [gate] max_missing_share of the rows are dropped for you)"
    if target.isna().any():
        raise DataValidationError(
            f"target column '{settings.target}' has {int(target.isna().sum())} missing values; "
            f"drop those rows or fill the labels {limit}"
        )
    if pd.api.types.is_float_dtype(target.dtype) and not np.isfinite(target).all():
        raise DataValidationError(
            f"target column '{settings.target}' has {int((~np.isfinite(target)).sum())} "
            f"infinite values; drop those rows or fix the values {limit}"
        )
    task, reason = choose_task(target, settings.task)
    classes: list[Label] = []
    if task.classifies:
        classes = sorted(
            {native_label(v) for v in target.unique()}, key=lambda v: (type(v).__name__, v)
        )
    numeric, categorical, text = _feature_lists(frame, settings)
    positive = _positive_class(classes, settings.positive_class, task.name)
    categories = {
        c: sorted({category_text(v) for v in frame[c].dropna().unique()}) for c in categorical
    }
    lengths = {}
    for c in text:
        chars = frame[c].fillna("").astype(str).str.len()
        lengths[c] = (int(chars.min()), int(chars.max())) if len(chars) else (0, 0)
    ranges = {}
    for c in numeric:
        values = pd.to_numeric(frame[c], errors="coerce")
        ranges[c] = (
            (float(values.min()), float(values.max())) if values.notna().any() else (0.0, 0.0)
        )
    return Schema(
        task=task.name,
        task_reason=reason,
        target=settings.target,
        id_column=settings.id_column,
        numeric=numeric,
        categorical=categorical,
        classes=classes,
        positive_class=positive,
        categories=categories,
        numeric_ranges=ranges,
        text=text,
        text_lengths=lengths,
    )


def _require_columns(frame: pd.DataFrame, settings: DataSettings) -> None:
    wanted = {"[data] target": [settings.target]}
    if settings.id_column:
        wanted["[data] id_column"] = [settings.id_column]
    wanted["[data] numeric_features"] = settings.numeric_features or []
    wanted["[data] categorical_features"] = settings.categorical_features or []
    wanted["[data] text_features"] = settings.text_features or []
    for key, columns in wanted.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{key} names column(s) {missing} that the data does not have; "
                f"available columns: {list(frame.columns)}"
            )


def _listed(settings: DataSettings) -> bool:
    lists = (settings.numeric_features, settings.categorical_features, settings.text_features)
    return any(columns is not None for columns in lists)


def _feature_lists(
    frame: pd.DataFrame, settings: DataSettings
) -> tuple[list[str], list[str], list[str]]:
    """(numeric, categorical, text) features: as listed, or inferred from the columns (free
    text by `flowship.roles`' rule; dates, ids and other types only when listed)."""
    from flowship.roles import decide_role

    reserved = {settings.target, settings.id_column}
    if _listed(settings):
        lists = {
            "numeric": list(settings.numeric_features or []),
            "categorical": list(settings.categorical_features or []),
            "text": list(settings.text_features or []),
        }
        seen: dict[str, str] = {}
        for kind, columns in lists.items():
            for column in columns:
                if column in seen:
                    raise DataValidationError(
                        f"columns {[column]} are listed as both {seen[column]} and {kind} "
                        "features; keep each in one list"
                    )
                seen[column] = kind
        overlap = set(seen) & reserved
        if overlap:
            raise DataValidationError(
                f"the target or id column {sorted(overlap, key=str)} is listed as a feature; "
                "remove it from the feature lists"
            )
        numeric, categorical, text = lists["numeric"], lists["categorical"], lists["text"]
        for column in text:
            values = frame[column].dropna()
            if pd.api.types.is_numeric_dtype(values.dtype) and not values.empty:
                raise DataValidationError(
                    f"text feature '{column}' holds numbers (e.g. {_first(values)!r}); move it "
                    "to [data] numeric_features or categorical_features"
                )
    else:
        numeric, categorical, text = [], [], []
        for column in frame.columns:
            if column in reserved:
                continue
            dtype = frame[column].dtype
            if pd.api.types.is_bool_dtype(dtype):
                categorical.append(column)
            elif pd.api.types.is_numeric_dtype(dtype):
                numeric.append(column)
            elif (
                pd.api.types.is_string_dtype(dtype)
                and decide_role(frame[column], 1.0).role == "text"
            ):
                text.append(column)
            elif isinstance(dtype, pd.CategoricalDtype) or (
                pd.api.types.is_string_dtype(dtype) and not _looks_like_dates_or_ids(frame[column])
            ):
                categorical.append(column)
            # datetimes, date strings, id-like text and other types are features only if listed
    if not numeric and not categorical and not text:
        raise DataValidationError(
            "no feature columns: list [data] numeric_features / categorical_features / "
            "text_features"
        )
    return numeric, categorical, text


def _looks_like_dates_or_ids(values: pd.Series) -> bool:
    """Text columns that are dates (as CSV gives them) or nearly unique (ids, free text)."""
    sample = values.dropna().astype(str).head(200)
    if sample.empty:
        return False
    if values.nunique(dropna=True) > max(50, 0.5 * len(values)):
        return True
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def _positive_class(classes: list[Label], configured: Label | None, task: str) -> Label | None:
    if task != "binary":
        if configured is not None:
            what = f"{len(classes)} classes {classes}" if classes else "values (regression)"
            raise DataValidationError(
                f"[data] positive_class = {configured!r} is only for binary targets; the target "
                f"has {what}: remove positive_class"
            )
        return None
    if configured is None:
        return classes[-1]  # 1 of {0, 1}, True of {False, True}, "yes" of {"no", "yes"}
    match = [c for c in classes if str(c) == str(configured)]
    if not match:
        raise DataValidationError(
            f"[data] positive_class = {configured!r} is not a target class; classes: {classes}"
        )
    return match[0]


def validate_dataset(
    frame: pd.DataFrame, schema: Schema, downcast: bool = True, target: bool = True
) -> pd.DataFrame:
    """Check values against the schema and return a frame with clean dtypes.

    Numeric features become float32 (`downcast`, the default: half the memory of float64,
    exact for integers up to 2**24 and to 7 significant digits otherwise; float64 when
    `downcast` is false), categorical features a pandas `category` of strings (missing stays
    missing; compact to store and quick to pickle between steps), and the target keeps its
    natural label type (a regression target: float64). With `target` false the target is
    neither needed nor returned (production rows before their labels arrive).

    Raises:
        DataValidationError: non-numeric values in a numeric feature, or duplicated ids.
    """
    wanted = [schema.id_column, *schema.features, schema.target if target else None]
    columns = [c for c in wanted if c]
    out = frame[columns]  # copy-on-write (pandas 3): assigning columns never touches `frame`
    numeric_dtype = "float32" if downcast else "float64"
    for column in schema.numeric:
        raw = out[column]
        if pd.api.types.is_bool_dtype(raw.dtype):
            out[column] = raw.astype(numeric_dtype)
            continue
        converted = pd.to_numeric(raw, errors="coerce")
        bad = raw[converted.isna() & raw.notna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in bad.unique()[:3])
            raise DataValidationError(
                f"numeric feature '{column}' has {len(bad)} non-numeric value(s), e.g. {examples}; "
                "clean the source or move the column to [data] categorical_features"
            )
        _require_finite(column, converted, downcast)
        out[column] = converted.astype(numeric_dtype)
    for column in schema.categorical:
        out[column] = _string_categories(out[column])
    for column in schema.text:
        out[column] = _text(out[column], column)
    if target:
        labels = out[schema.target]
        out[schema.target] = _label_series(labels) if schema.kind.classifies else _values(labels)
    if schema.id_column:
        ids = out[schema.id_column]
        dupes = ids[ids.duplicated()]
        if len(dupes):
            raise DataValidationError(
                f"id column '{schema.id_column}' has {len(dupes)} duplicated value(s), e.g. "
                f"{_first(dupes)!r}; ids must be unique (deduplicate the source or unset id_column)"
            )
    return out.reset_index(drop=True)


def _first(values: pd.Series) -> Any:
    """The first value as plain Python, for a message: 5.0, not np.float64(5.0)."""
    return values.iloc[:1].tolist()[0]


def _text(values: pd.Series, column: str) -> pd.Series:
    """A text feature as Python strings in an object column; missing stays missing.

    Raises:
        DataValidationError: the column holds numbers, not text.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and values.notna().any():
        raise DataValidationError(
            f"text feature '{column}' holds numbers; move it to numeric or categorical features"
        )
    return to_category_strings(values)


def _values(values: pd.Series) -> pd.Series:
    """A regression target as float64 (missing stays missing)."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _require_finite(column: str, values: pd.Series, downcast: bool) -> None:
    """Refuse infinite numbers, and numbers float32 cannot hold when downcasting.

    Raises:
        DataValidationError: naming the column, the count, an example and the fix.
    """
    as_float = values.astype("float64")
    infinite = np.isinf(as_float)
    if infinite.any():
        raise DataValidationError(
            f"numeric feature '{column}' has {int(infinite.sum())} infinite value(s); replace "
            "them in the source (with an empty value for missing, or a real number)"
        )
    if downcast:
        huge = as_float.abs() > _FLOAT32_MAX
        if huge.any():
            raise DataValidationError(
                f"numeric feature '{column}' has {int(huge.sum())} value(s) too large for "
                f"float32 (e.g. {as_float[huge].iloc[0]:.3g}); set [data] downcast = false to "
                "keep float64, or rescale the column"
            )


def _label_series(values: pd.Series) -> pd.Series:
    """Labels in their natural dtype: integer-valued floats become int64, mixed become objects."""
    if pd.api.types.is_float_dtype(values.dtype) and bool((values % 1 == 0).all()):
        return values.astype("int64")
    if values.dtype == object:
        return values.map(native_label).astype(object)
    return values


def _string_categories(values: pd.Series) -> pd.Series:
    """A `category` column whose categories are the values' category text.

    Categorises first and converts only the distinct values (not one Python string per row,
    which costs ~60 bytes a row), unless two values print alike (1 and "1").
    """
    categorical = (
        values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    )
    names = [category_text(c) for c in categorical.cat.categories]
    if len(set(names)) < len(names):
        return to_category_strings(values).astype("category")
    return categorical.cat.rename_categories(names)


def to_category_strings(values: pd.Series) -> pd.Series:
    """Categorical values as their category text in an object column; missing stays NaN."""
    return values.astype(object).map(category_text, na_action="ignore").astype(object)


def fingerprint_dataset(frame: pd.DataFrame) -> str:
    """A content hash of a table: same values, columns and order → same fingerprint."""
    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def load_training_data(
    settings: DataSettings, max_missing_share: float, extra: pd.DataFrame | None = None
) -> LoadedData:
    """Read the configured source, resolve its schema, validate it and fingerprint it.

    Rows whose target is missing, or not a finite number, are dropped and counted, unless
    they are more than `max_missing_share` of the rows (then the table is refused).
    `extra` rows (labelled production rows) are appended; with an id column, an id that
    appears in both keeps its newest (extra) row.
    """
    frame = read_source(
        settings.source,
        columns=_wanted_columns(settings),
        categorical=settings.categorical_features,
    )
    if extra is not None and len(extra):
        frame = pd.concat(
            [frame, extra[[c for c in frame.columns if c in extra]]], ignore_index=True
        )
        if settings.id_column:
            frame = frame.drop_duplicates(settings.id_column, keep="last").reset_index(drop=True)
    _require_columns(frame, settings)  # a file of other columns: name them, not "no rows"
    if frame.empty:
        raise DataValidationError(f"[data] source {settings.source!r} has no rows")
    frame, dropped = _drop_unusable_targets(frame, settings.target, max_missing_share)
    schema = infer_schema(frame, settings)
    clean = validate_dataset(frame, schema, downcast=settings.downcast)
    return LoadedData(clean, schema, fingerprint_dataset(clean), dropped)


def _drop_unusable_targets(
    frame: pd.DataFrame, target: str, max_share: float
) -> tuple[pd.DataFrame, int]:
    """The rows with a usable target, and how many were not (missing, NaN, ±inf)."""
    if target not in frame:
        return frame, 0  # infer_schema names the missing column
    values = frame[target]
    bad = values.isna()
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        bad |= ~np.isfinite(values.astype("float64").fillna(0.0))
    dropped = int(bad.sum())
    if not dropped:
        return frame, 0
    if dropped == len(frame) or dropped > max_share * len(frame):
        return frame, 0  # infer_schema refuses it, counting the missing values
    return frame[~bad].reset_index(drop=True), dropped


def _wanted_columns(settings: DataSettings) -> list[str] | None:
    if not _listed(settings):
        return None
    columns = [settings.id_column, *(settings.numeric_features or [])]
    columns += [*(settings.categorical_features or []), *(settings.text_features or [])]
    return [c for c in [*columns, settings.target] if c]


def split_dataset(
    frame: pd.DataFrame,
    schema: Schema,
    test_size: float,
    seed: int,
    validation_size: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split into (train, holdout): stratified by class when classifying. With
    `validation_size`, the training part is checked to split again for ranking candidates.

    Raises:
        DataValidationError: a class is too rare to appear in the holdout, the training part
            and its validation split.
    """
    train, holdout = schema.kind.split(frame, schema.target, test_size, seed)
    try:
        if validation_size is not None:
            schema.kind.split(train, schema.target, validation_size, seed)
    except DataValidationError:
        if not schema.kind.classifies:
            raise
        counts = frame[schema.target].value_counts()
        rare = counts[counts == counts.min()]
        raise DataValidationError(
            f"class(es) {[native_label(c) for c in rare.index]} of '{schema.target}' have only "
            f"{int(rare.iloc[0])} row(s) in {len(frame)}: too few to appear in the holdout, the "
            "training part and its validation split (test_size and validation_size); add rows "
            "of that class, merge it with another, or drop it"
        ) from None
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
