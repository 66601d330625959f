"""The demo's data: synthetic cohorts and assays, generated deterministically in code.

Each generator is a small, explicit model of how such data arise (a latent
disease stage behind the biomarkers of a memory-clinic cohort, marker genes
behind cell types, rate equations behind a time course), so that a model that
captures more of the mechanism genuinely scores better. The same seed always
gives the same numbers; `write_benchmark` turns one draw into a benchmark
directory (schemas/benchmark.json) with CSV files written at fixed precision,
so the split hash is stable across runs and machines.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The data are generated with the same integrator the ODE models' eval.py use.
from .models.model_io import integrate as rk4


@dataclass(frozen=True)
class Table:
    """A drawn data set: example ids, named numeric columns, and labels (what only the gate sees)."""

    ids: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray  # (n, len(columns)), float64
    labels: np.ndarray  # (n,): 0/1, class index, or a real number

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def select(self, names: Sequence[str]) -> np.ndarray:
        return self.values[:, [self.columns.index(name) for name in names]]


def _ids(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i:05d}" for i in range(n))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------ AD conversion cohort --

#: Clinical and imaging variables every AD risk model of the demo may use.
AD_CORE_FEATURES = (
    "age", "sex_female", "education_years", "apoe4_copies", "amyloid_pet_suvr", "mmse", "cdr_sb",
    "hippocampal_volume_ml", "plasma_nfl_pg_ml", "plasma_gfap_pg_ml",
)
#: The newer blood biomarker: a less noisy read-out of the latent disease stage.
AD_PTAU_FEATURE = "plasma_ptau217_pg_ml"
#: Vascular and lifestyle covariates: real but small effects on conversion.
AD_LIFESTYLE_FEATURES = (
    "bmi", "systolic_bp_mmhg", "ldl_mmol_l", "hba1c_pct", "sleep_hours", "physical_activity_met_h",
    "alcohol_units_week", "smoking_pack_years", "depression_gds", "hearing_loss", "diabetes", "hypertension",
)
#: The scanning site, a code with no effect on conversion.
AD_SITE_FEATURE = "scan_site"
AD_COLUMNS = (*AD_CORE_FEATURES, AD_PTAU_FEATURE, *AD_LIFESTYLE_FEATURES, AD_SITE_FEATURE)

# Direct effects of the lifestyle covariates on the log-odds of conversion,
# per standard deviation. Small on purpose: together they are worth a few
# thousandths of AUROC at most (0.000 to 0.004 over test seeds), so a model
# that drops them stays well within a 0.01 non-inferiority margin without
# being measurably better than one that keeps them.
_AD_LIFESTYLE_EFFECTS = np.array([0.06, 0.08, 0.05, 0.06, -0.06, -0.08, 0.04, 0.06, 0.08, 0.06, 0.06, 0.05])
# Population mean and standard deviation of each covariate as drawn below, so
# an effect means the same in every sample (a one-site draw included).
_AD_LIFESTYLE_MEAN = np.array([27.0, 135.0, 3.2, 5.8, 6.8, 12.0, 6.0, 8.0, 3.0, 0.30, 0.15, 0.45])
_AD_LIFESTYLE_SD = np.array([4.0, 18.0, 0.8, 0.6, 1.1, 8.49, 5.48, 13.27, 1.73, 0.458, 0.357, 0.497])


def ad_cohort(n: int, seed: int, *, site: int | None = None) -> Table:
    """A memory-clinic cohort followed for three years; label 1 = converted to AD dementia.

    A latent disease stage drives cognition, atrophy and the blood markers;
    conversion depends on the stage, amyloid, APOE4, age and small lifestyle
    effects. `site` restricts the draw to one scanning site (a biased sample).
    """
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(72.0, 7.0, n), 55, 90).round(1)
    sex_female = (rng.random(n) < 0.55).astype(float)
    education = np.clip(rng.normal(15.0, 3.0, n), 6, 22).round()
    apoe4 = rng.choice([0.0, 1.0, 2.0], size=n, p=[0.60, 0.32, 0.08])
    amyloid = (1.10 + 0.12 * apoe4 + 0.008 * (age - 72) + rng.normal(0, 0.18, n)).round(3)
    amyloid_excess = np.clip(amyloid - 1.10, 0, None)
    stage = 0.9 * rng.standard_normal(n) + 1.6 * amyloid_excess + 0.02 * (age - 72)
    ptau = np.exp(np.log(0.35) + 0.45 * stage + 0.5 * amyloid_excess + rng.normal(0, 0.12, n)).round(4)
    mmse = np.clip(np.round(28.0 - 1.3 * stage - 0.04 * (age - 72) + 0.08 * (education - 15)
                            + rng.normal(0, 1.4, n)), 12, 30)
    cdr_sb = np.clip(np.round(2 * (1.0 + 0.8 * stage + rng.normal(0, 0.8, n))) / 2, 0, 9)
    hippocampus = (7.2 - 0.30 * stage - 0.03 * (age - 72) - 0.2 * sex_female + rng.normal(0, 0.5, n)).round(3)
    nfl = np.exp(np.log(15.0) + 0.012 * (age - 72) + 0.15 * stage + rng.normal(0, 0.30, n)).round(2)
    gfap = np.exp(np.log(120.0) + 0.6 * amyloid_excess + 0.08 * stage + rng.normal(0, 0.30, n)).round(1)
    lifestyle = np.column_stack([
        rng.normal(27.0, 4.0, n).round(1),                              # bmi
        rng.normal(135.0, 18.0, n).round(),                             # systolic_bp_mmhg
        rng.normal(3.2, 0.8, n).round(2),                               # ldl_mmol_l
        rng.normal(5.8, 0.6, n).round(2),                               # hba1c_pct
        rng.normal(6.8, 1.1, n).round(1),                               # sleep_hours
        rng.gamma(2.0, 6.0, n).round(1),                                # physical_activity_met_h
        rng.gamma(1.2, 5.0, n).round(1),                                # alcohol_units_week
        np.where(rng.random(n) < 0.4, rng.gamma(2.0, 10.0, n), 0).round(1),  # smoking_pack_years
        rng.poisson(3.0, n).astype(float),                              # depression_gds
        (rng.random(n) < 0.30).astype(float),                           # hearing_loss
        (rng.random(n) < 0.15).astype(float),                           # diabetes
        (rng.random(n) < 0.45).astype(float),                           # hypertension
    ])
    scan_site = rng.integers(1, 6, n).astype(float)
    standardised = (lifestyle - _AD_LIFESTYLE_MEAN) / _AD_LIFESTYLE_SD
    log_odds = (-1.6 + 1.7 * stage + 1.2 * amyloid_excess + 0.30 * apoe4 + 0.025 * (age - 72)
                + standardised @ _AD_LIFESTYLE_EFFECTS)
    converted = (rng.random(n) < sigmoid(log_odds)).astype(float)
    values = np.column_stack([age, sex_female, education, apoe4, amyloid, mmse, cdr_sb, hippocampus, nfl, gfap,
                              ptau, lifestyle, scan_site])
    if site is not None:
        keep = scan_site == site
        values, converted = values[keep], converted[keep]
    return Table(_ids("p", len(converted)), AD_COLUMNS, values, converted)


# ---------------------------------------------------------- cell-type table --

CELL_TYPES = ("astrocyte", "microglia", "oligodendrocyte", "opc", "excitatory_neuron", "inhibitory_neuron",
              "endothelial")
_CELL_TYPE_FREQUENCIES = (0.12, 0.08, 0.30, 0.08, 0.25, 0.12, 0.05)
CELL_MARKERS: Mapping[str, tuple[str, ...]] = {
    "astrocyte": ("GFAP", "AQP4", "SLC1A2"),
    "microglia": ("P2RY12", "CX3CR1", "CSF1R"),
    "oligodendrocyte": ("MBP", "PLP1", "MOG"),
    "opc": ("PDGFRA", "VCAN"),
    "excitatory_neuron": ("SLC17A7", "SATB2"),
    "inhibitory_neuron": ("GAD1", "GAD2"),
    "endothelial": ("CLDN5", "FLT1"),
}
MARKER_GENES = tuple(gene for genes in CELL_MARKERS.values() for gene in genes)
# Lineages share part of their programme: OPCs express some myelin genes,
# both neuron classes some of each other's, astrocytes a little SLC1A2-like
# signal in endothelium. This is what makes the table not trivially separable.
_SHARED_EXPRESSION = {("opc", "PLP1"): 0.45, ("opc", "MBP"): 0.25, ("oligodendrocyte", "VCAN"): 0.15,
                      ("excitatory_neuron", "GAD1"): 0.12, ("inhibitory_neuron", "SATB2"): 0.15,
                      ("endothelial", "SLC1A2"): 0.15, ("microglia", "GFAP"): 0.10}


def cell_type_table(n: int, seed: int) -> Table:
    """Single nuclei from middle temporal gyrus: log1p marker counts; label = cell type index."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(CELL_TYPES), size=n, p=_CELL_TYPE_FREQUENCIES)
    rate = np.full((len(CELL_TYPES), len(MARKER_GENES)), 0.25)
    for k, cell_type in enumerate(CELL_TYPES):
        for gene in CELL_MARKERS[cell_type]:
            rate[k, MARKER_GENES.index(gene)] = 6.0
    for (cell_type, gene), fraction in _SHARED_EXPRESSION.items():
        rate[CELL_TYPES.index(cell_type), MARKER_GENES.index(gene)] = 6.0 * fraction
    size_factor = rng.lognormal(0.0, 0.6, n)[:, None]  # sequencing depth varies a lot per nucleus
    counts = rng.poisson(rate[kinds] * size_factor)
    dropped = rng.random(counts.shape) < 0.25  # dropout: a quarter of measurements read zero
    expression = np.log1p(np.where(dropped, 0, counts)).round(4)
    return Table(_ids("cell", n), MARKER_GENES, expression, kinds.astype(float))


# ----------------------------------------------------- microglial DAM state --

MICROGLIA_GENES = ("TREM2", "APOE", "SPP1", "LPL", "CST7", "ITGAX", "CD9", "P2RY12", "TMEM119", "CX3CR1")
# Log fold change in disease-associated microglia (DAM) vs homeostatic.
_DAM_LOG_FOLD = np.array([0.9, 1.0, 1.4, 1.2, 1.1, 0.8, 0.7, -1.0, -0.9, -0.6])


def microglia_state_table(n: int, seed: int) -> Table:
    """Microglia from AD cortex: log-normalised expression; label 1 = disease-associated state.

    Activation is a continuum: each cell has a latent activation level, the
    label is whether it crossed into the DAM programme, so border cells look alike.
    """
    rng = np.random.default_rng(seed)
    activation = rng.normal(0.0, 1.0, n)
    dam = (activation + rng.normal(0, 0.6, n) > 0.4).astype(float)
    baseline = np.array([1.5, 2.0, 0.5, 0.6, 0.5, 0.4, 1.2, 2.5, 2.2, 2.4])
    expression = baseline + np.outer(0.2 * activation + 0.3 * dam, _DAM_LOG_FOLD) + rng.normal(0, 1.0, (n, 10))
    return Table(_ids("mg", n), MICROGLIA_GENES, np.clip(expression, 0, None).round(4), dam)


# ------------------------------------------------------------ time courses --



ABETA_SAMPLE_TIMES_H = np.array([1.0, 2.0, 4.0, 6.0, 9.0, 12.0, 18.0, 24.0, 36.0])
#: The rate constants the legacy Amyloid Production-Clearance Model was fitted with.
ABETA_POPULATION_RATES = {"k_production": 0.094, "k_clearance": 0.051, "k_aggregation": 0.0032}


def abeta_kinetics_table(n_participants: int, seed: int) -> Table:
    """CSF soluble amyloid-beta (ng/mL) sampled over 36 h after a perturbation of its baseline level.

    dA/dt = k_production - k_clearance * A - k_aggregation * A^2, with
    per-participant rates scattered around the population values; columns
    participant, time_h, abeta_baseline_ng_ml; label A(time_h) with assay noise.
    """
    rng = np.random.default_rng(seed)
    rates = {name: value * rng.lognormal(0.0, 0.12, n_participants) for name, value in ABETA_POPULATION_RATES.items()}
    baseline = rng.uniform(0.4, 3.6, n_participants).round(3)

    def derivative(a: np.ndarray) -> np.ndarray:
        return (rates["k_production"] - rates["k_clearance"] * a[:, 0] - rates["k_aggregation"] * a[:, 0] ** 2)[:, None]

    trajectory = rk4(derivative, baseline[:, None], ABETA_SAMPLE_TIMES_H, step=0.5)[:, :, 0]  # (times, n)
    participant = np.repeat(np.arange(n_participants), len(ABETA_SAMPLE_TIMES_H))
    time_h = np.tile(ABETA_SAMPLE_TIMES_H, n_participants)
    truth = trajectory.T.reshape(-1)
    measured = truth * rng.lognormal(0.0, 0.03, truth.shape) + rng.normal(0, 0.04, truth.shape)
    values = np.column_stack([participant.astype(float), time_h, baseline[participant]])
    return Table(_ids("s", len(truth)), ("participant", "time_h", "abeta_baseline_ng_ml"), values,
                 measured.round(4))


IL6_SAMPLE_TIMES_H = np.array([2.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0, 72.0])
AMYLOID_DOSES_UM = np.array([0.0, 0.5, 1.0, 2.0, 5.0])
#: The microglial activation network behind the IL-6 assay (TREM2 signalling,
#: APOE secretion, IL-6 release inhibited by APOE); rates per hour.
IL6_TRUE_RATES = {"k_trem2_activation": 0.30, "k_trem2_decay": 0.15, "k_apoe_secretion": 0.40,
                  "k_apoe_decay": 0.05, "k_il6_release": 2.0, "apoe_half_inhibition": 1.5, "hill": 2.0,
                  "il6_basal": 0.05, "k_il6_decay": 0.25}


def microglia_network_derivative(rates: Mapping[str, Any], dose: np.ndarray, trem2_function: np.ndarray):
    """d(TREM2 signalling, APOE, IL-6)/dt for cultures given amyloid dose and TREM2 function (1 = common allele)."""
    def derivative(y: np.ndarray) -> np.ndarray:
        trem2, apoe, il6 = y[:, 0], y[:, 1], y[:, 2]
        inhibition = 1.0 + (np.clip(apoe, 0, None) / rates["apoe_half_inhibition"]) ** rates["hill"]
        return np.column_stack([
            rates["k_trem2_activation"] * dose * trem2_function - rates["k_trem2_decay"] * trem2,
            rates["k_apoe_secretion"] * trem2 - rates["k_apoe_decay"] * apoe,
            rates["k_il6_release"] * dose / inhibition + rates["il6_basal"] - rates["k_il6_decay"] * il6,
        ])
    return derivative


def il6_timecourse_table(n_cultures: int, seed: int) -> Table:
    """IL-6 (ng/mL) released by iPSC-derived microglia after amyloid-beta exposure, over 72 h.

    Cultures differ in dose, TREM2 genotype (R47H halves TREM2 function) and
    culture-to-culture rate variation; columns culture, trem2_r47h, amyloid_dose_um, time_h.
    """
    rng = np.random.default_rng(seed)
    dose = rng.choice(AMYLOID_DOSES_UM, n_cultures)
    r47h = (rng.random(n_cultures) < 0.3).astype(float)
    rates = {name: value * rng.lognormal(0.0, 0.10, n_cultures) if name != "hill" else value
             for name, value in IL6_TRUE_RATES.items()}
    start = np.column_stack([np.zeros(n_cultures), np.zeros(n_cultures), rates["il6_basal"] / rates["k_il6_decay"]])
    derivative = microglia_network_derivative(rates, dose, 1.0 - 0.5 * r47h)
    trajectory = rk4(derivative, start, IL6_SAMPLE_TIMES_H, step=0.25)[:, :, 2]  # (times, n)
    culture = np.repeat(np.arange(n_cultures), len(IL6_SAMPLE_TIMES_H))
    truth = trajectory.T.reshape(-1)
    measured = np.clip(truth * rng.lognormal(0.0, 0.05, truth.shape) + rng.normal(0, 0.05, truth.shape), 0, None)
    values = np.column_stack([culture.astype(float), r47h[culture], dose[culture],
                              np.tile(IL6_SAMPLE_TIMES_H, n_cultures)])
    return Table(_ids("w", len(truth)), ("culture", "trem2_r47h", "amyloid_dose_um", "time_h"), values,
                 measured.round(4))


# ------------------------------------------------------------ target ranking --

TARGET_EVIDENCE = ("overall_association", "genetic_association", "literature", "animal_model", "rna_expression",
                   "affected_pathway")


def target_ranking_table(n_genes: int, seed: int) -> Table:
    """Open Targets-style evidence scores (0..1) per gene for AD; label 1 = a curated known AD target.

    Known targets are enriched for genetic evidence above all, then pathway
    and animal-model evidence; the overall score is a noisy blend of the rest.
    """
    rng = np.random.default_rng(seed)
    relevance = rng.standard_normal(n_genes)
    evidence = {
        "genetic_association": sigmoid(-2.5 + 1.3 * relevance + rng.normal(0, 1.0, n_genes)),
        "literature": sigmoid(-2.0 + 0.6 * relevance + rng.normal(0, 1.2, n_genes)),
        "animal_model": sigmoid(-2.2 + 0.7 * relevance + rng.normal(0, 1.0, n_genes)),
        "rna_expression": sigmoid(-1.0 + 0.3 * relevance + rng.normal(0, 1.0, n_genes)),
        "affected_pathway": sigmoid(-1.8 + 0.8 * relevance + rng.normal(0, 1.0, n_genes)),
    }
    overall = 0.35 * evidence["genetic_association"] + 0.25 * evidence["literature"] + \
        0.15 * evidence["animal_model"] + 0.10 * evidence["rna_expression"] + 0.15 * evidence["affected_pathway"]
    known = (rng.random(n_genes) < sigmoid(-5.2 + 1.6 * relevance)).astype(float)
    values = np.column_stack([overall, *(evidence[name] for name in TARGET_EVIDENCE[1:])]).round(5)
    ids = tuple(f"gene{i:05d}" for i in range(n_genes))
    return Table(ids, TARGET_EVIDENCE, values, known)


# ------------------------------------------------------- benchmark directories --

def _number(value: float) -> str:
    # Fixed, short text for every number: the split hash covers these bytes.
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def write_csv(path: Path, header: Sequence[str], ids: Sequence[str], values: np.ndarray) -> None:
    rows = [",".join(header)]
    matrix = np.asarray(values).reshape(len(ids), -1)
    rows += [example_id + "," + ",".join(_number(v) for v in row) for example_id, row in zip(ids, matrix)]
    path.write_text("\n".join(rows) + "\n")
    path.chmod(0o644)


def write_benchmark(root: Path, manifest: Mapping[str, Any], table: Table, *, inputs_name: str,
                    classes: Sequence[str] | None = None) -> Path:
    """Write benchmark.json, inputs/<inputs_name> (example_id + columns) and labels.csv under root/<id>.

    A manifest whose `resampling` names a group_column (examples that come in
    clusters: a participant's samples, a culture's time points) gets that
    table column beside the labels, where the gate reads it and models never
    see it (docs/model_promotion_policy.md 15.1). Files are world-readable and
    directories world-searchable: the sandbox reads inputs/ as an unprivileged
    user.
    """
    directory = root / manifest["id"]
    (directory / "inputs").mkdir(parents=True, exist_ok=True)
    for folder in (directory, directory / "inputs"):
        folder.chmod(0o755)
    write_csv(directory / "inputs" / inputs_name, ("example_id", *table.columns), table.ids, table.values)
    if classes is not None:
        labels = [classes[int(k)] for k in table.labels]
    elif manifest["task"] == "binary":
        labels = [str(int(v)) for v in table.labels]
    else:
        labels = [_number(v) for v in table.labels]
    group_column = (manifest.get("resampling") or {}).get("group_column")
    header, cells = "example_id,label", [f"{i},{y}" for i, y in zip(table.ids, labels)]
    if group_column is not None:
        header += f",{group_column}"
        cells = [f"{cell},{_number(g)}" for cell, g in zip(cells, table.column(group_column))]
    labels_path = directory / "labels.csv"
    labels_path.write_text(f"{header}\n" + "".join(f"{cell}\n" for cell in cells))
    labels_path.chmod(0o644)
    manifest_path = directory / "benchmark.json"
    manifest_path.write_text(json.dumps({**manifest, "labels": "labels.csv"}, indent=2) + "\n")
    manifest_path.chmod(0o644)
    return directory


def read_inputs_table(path: os.PathLike[str] | str) -> tuple[list[str], list[str], np.ndarray]:
    """(example ids, column names, values) of a CSV written by write_csv; the demo's tests use it."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")[1:]
    cells = [line.split(",") for line in lines[1:]]
    return [c[0] for c in cells], header, np.array([[float(v) for v in c[1:]] for c in cells])
