"""hgq.data: JSC loaders, standard split, shipped generated sample, vectors files, generator (physics extra)."""

from __future__ import annotations

import json
import urllib.error

import numpy as np
import pytest

from hgq.data import (
    CLASSES,
    FEATURES,
    GENERATED_NAME,
    OPENML_NAME,
    PARTICLE_FEATURES,
    DatasetUnavailableError,
    JSCData,
    ParticleData,
    export_vectors,
    jsc_split,
    load_jsc,
    load_particles,
    load_vectors,
    particle_split,
    physics_vectors,
    save_dataset,
    train_test_indices,
)
from hgq.data.jsc import SAMPLE_FILE
from hgq.data.particles import PARTICLES_SAMPLE_FILE

F = {f: i for i, f in enumerate(FEATURES)}
PF = {f: i for i, f in enumerate(PARTICLE_FEATURES)}


@pytest.fixture(scope="module")
def sample() -> JSCData:
    return load_jsc("sample")


def test_sample_offline_shape_classes_balance(sample):
    assert sample.name == GENERATED_NAME
    assert sample.features == FEATURES and len(FEATURES) == 16
    assert sample.classes == ("g", "q", "w", "z", "t") == CLASSES
    n = len(sample)
    assert n >= 40_000 and sample.X.shape == (n, 16) and sample.y.shape == (n,)
    assert np.all(np.isfinite(sample.X))
    counts = sample.counts()
    assert len(set(counts.values())) == 1 and counts["g"] >= 8_000, counts
    assert sample.provenance["counts"] == counts and sample.provenance["name"] == GENERATED_NAME
    assert SAMPLE_FILE.stat().st_size < 5_000_000


def test_sample_physics(sample):
    """Groomed-mass peaks near the W/Z/top masses; gluon jets wider and busier than quark jets."""
    mass = sample.X[:, F["j_mass_mmdt"]]

    def peak(c: int) -> float:
        h, edges = np.histogram(mass[sample.y == c], bins=np.arange(0.0, 300.0, 5.0))
        return float(edges[np.argmax(h)] + 2.5)

    assert 70 <= peak(2) <= 90 and 82 <= peak(3) <= 100 and 160 <= peak(4) <= 185
    assert peak(2) < peak(3) < peak(4)
    g, q = sample.y == 0, sample.y == 1
    for name in ("j_multiplicity", "j_c2_b1_mmdt", "j_d2_b1_mmdt", "j_mass_mmdt"):
        assert np.median(sample.X[g, F[name]]) > np.median(sample.X[q, F[name]]), name
    assert np.median(sample.X[g, F["j_zlogz"]]) < np.median(sample.X[q, F["j_zlogz"]])  # more, softer constituents


def test_split_matches_sklearn_and_is_deterministic():
    sk = pytest.importorskip("sklearn.model_selection", reason="scikit-learn is the reference for the split")
    for n in (10, 101, 5000):
        train, test = train_test_indices(n)
        ref_train, ref_test = sk.train_test_split(np.arange(n), test_size=0.2, random_state=42)
        assert np.array_equal(train, ref_train) and np.array_equal(test, ref_test)
    a, b = train_test_indices(1000), train_test_indices(1000)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(train_test_indices(1000, random_state=1)[1], a[1])


def test_split_scaler_fitted_on_train_only(sample):
    split = jsc_split(sample)
    n = len(sample)
    assert split.name == sample.name
    assert len(split.x_test) == int(np.ceil(0.2 * n)) and len(split.x_train) + len(split.x_test) == n
    assert np.intersect1d(split.train_index, split.test_index).size == 0
    x = sample.X.astype(np.float64)
    assert np.array_equal(split.mean, x[split.train_index].mean(axis=0))
    assert np.array_equal(split.scale, x[split.train_index].std(axis=0))
    assert np.allclose(split.x_train.mean(axis=0), 0, atol=1e-4) and np.allclose(split.x_train.std(axis=0), 1, 1e-4)
    # changing test rows leaves the scaler untouched; changing a train row moves it
    x_mod = sample.X.copy()
    x_mod[split.test_index] += 1000.0
    moved_test = jsc_split(JSCData(sample.name, x_mod, sample.y))
    assert np.array_equal(moved_test.mean, split.mean) and np.array_equal(moved_test.scale, split.scale)
    x_mod = sample.X.copy()
    x_mod[split.train_index[0]] += 1000.0
    assert not np.array_equal(jsc_split(JSCData(sample.name, x_mod, sample.y)).mean, split.mean)
    skp = pytest.importorskip("sklearn.preprocessing", reason="scikit-learn StandardScaler as the reference")
    ref = skp.StandardScaler().fit(x[split.train_index])
    assert np.allclose(split.mean, ref.mean_, rtol=1e-12) and np.allclose(split.scale, ref.scale_, rtol=1e-12)


def test_openml_offline_error_names_alternatives(monkeypatch, tmp_path):
    datasets = pytest.importorskip("sklearn.datasets", reason="load_jsc('openml') uses scikit-learn")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "fetch_openml", no_network)
    with pytest.raises(DatasetUnavailableError) as err:
        load_jsc("openml", cache_dir=tmp_path)
    msg = str(err.value)
    assert "42468" in msg and "load_jsc('sample')" in msg and "hgq.data.generate" in msg and "\n" not in msg


def test_openml_reorders_features_maps_labels_and_caches(monkeypatch, tmp_path):
    datasets = pytest.importorskip("sklearn.datasets", reason="load_jsc('openml') uses scikit-learn")
    rng = np.random.default_rng(0)
    order = list(rng.permutation(16))
    raw = rng.normal(size=(30, 16))
    targets = np.array(list("gqwzt") * 6, dtype=object)
    calls = []

    def fake_fetch(*, data_id, **kwargs):
        calls.append(data_id)
        return type(
            "Bunch", (), {"data": raw[:, order], "target": targets, "feature_names": [FEATURES[i] for i in order]}
        )

    monkeypatch.setattr(datasets, "fetch_openml", fake_fetch)
    data = load_jsc("openml", cache_dir=tmp_path)
    assert calls == [42468] and data.name == OPENML_NAME
    assert np.array_equal(data.X, raw) and np.array_equal(data.y, np.tile(np.arange(5), 6))
    monkeypatch.setattr(datasets, "fetch_openml", lambda **kw: pytest.fail("cached copy not used"))
    again = load_jsc("openml", cache_dir=tmp_path)
    assert np.array_equal(again.X, raw) and np.array_equal(again.y, data.y)


def test_load_path_round_trip_and_errors(tmp_path):
    x = np.arange(5 * 16, dtype=np.float32).reshape(5, 16)
    y = np.array([0, 1, 2, 3, 4])
    p = save_dataset(tmp_path / "mine.npz", x, y, {"name": "my-set", "note": 1})
    d = load_jsc(p)
    assert d.name == "my-set" and np.array_equal(d.X, x) and np.array_equal(d.y, y) and d.provenance["note"] == 1
    assert load_jsc(tmp_path / "mine.npz").name == "my-set"
    with pytest.raises(FileNotFoundError, match="neither 'sample', 'openml'"):
        load_jsc(tmp_path / "absent.npz")
    np.savez(tmp_path / "bad.npz", X=x, y=y)
    with pytest.raises(ValueError, match="missing"):
        load_jsc(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="name"):
        save_dataset(tmp_path / "x.npz", x, y, {})


def test_vectors_round_trip(tmp_path):
    x = np.array([[0.5, -1.25], [3.0, 0.0]], dtype=np.float32)
    y = np.arange(6).reshape(2, 3)
    p = export_vectors(tmp_path / "v.npz", x, y)
    lx, ly = load_vectors(p)
    assert lx.dtype == ly.dtype == np.float64
    assert np.array_equal(lx, x) and np.array_equal(ly, y)
    p2 = export_vectors(tmp_path / "only_x.vec", np.zeros((3, 4, 2)))
    assert p2.name == "only_x.vec"
    lx, ly = load_vectors(p2)
    assert ly is None and lx.shape == (3, 4, 2)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"y": np.zeros((2, 1))}, "no 'x'"),
        ({"x": np.zeros((2, 1)), "z": np.zeros(2)}, "unexpected arrays"),
        ({"x": np.zeros((2, 1), dtype=np.float32)}, "float64"),
        ({"x": np.array([[1.0, np.nan]])}, "NaN"),
        ({"x": np.zeros(3)}, "shape"),
        ({"x": np.zeros((2, 1)), "y": np.zeros((3, 1))}, "rows"),
    ],
)
def test_load_vectors_rejects_bad_files(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match=match):
        load_vectors(p)


def test_vectors_bad_input_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_vectors"):
        load_vectors(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load_vectors(tmp_path / "junk.npz")
    np.save(tmp_path / "arr.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="bare .npy"):
        load_vectors(tmp_path / "arr.npy")
    with pytest.raises(ValueError, match="NaN"):
        export_vectors(tmp_path / "v.npz", np.array([[np.inf]]))
    with pytest.raises(ValueError, match="rows"):
        export_vectors(tmp_path / "v.npz", np.zeros((2, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="real numeric"):
        export_vectors(tmp_path / "v.npz", np.array([["a"]]))


def test_physics_vectors(sample):
    split = jsc_split(sample)
    v = physics_vectors(64, seed=3)
    assert v.dtype == np.float64 and v.shape == (64, 16)
    assert np.array_equal(v, physics_vectors(64, seed=3)) and not np.array_equal(v, physics_vectors(64, seed=4))
    rows = {r.tobytes() for r in split.x_test.astype(np.float64)}
    assert all(r.tobytes() in rows for r in v) and len({r.tobytes() for r in v}) == 64
    with pytest.raises(ValueError, match="n must be in"):
        physics_vectors(len(split.x_test) + 1)


def test_generator_tiny_run(tmp_path):
    pytest.importorskip("pythia8mc", reason="physics extra not installed (pip install 'hgq-hil[physics]')")
    pytest.importorskip("fastjet", reason="physics extra not installed (pip install 'hgq-hil[physics]')")
    from hgq.data import generate

    path = generate.generate(2, tmp_path, workers=1, seed=5, chunk=2)
    d = load_jsc(path)
    assert d.name == GENERATED_NAME and d.counts() == dict.fromkeys(CLASSES, 2)
    assert np.all(np.isfinite(d.X)) and np.all(d.X[:, F["j_multiplicity"]] >= 1)
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["versions"]["pythia8mc"] == "8.317.2" and prov["seed"] == 5
    assert {c["seed"] for c in prov["chunks"]} == {generate.chunk_seed(5, p, 0) for p in generate.PROCESSES}
    # rerun reuses the chunks: identical data without generating again
    again = load_jsc(generate.generate(2, tmp_path, workers=1, seed=5, chunk=2))
    assert np.array_equal(again.X, d.X)
    # same seed in a fresh directory: identical features (deterministic generation)
    same = generate.generate_chunk("w", generate.chunk_seed(5, "w", 0), 2)
    w = np.load(tmp_path / "chunk_w_0000.npz")
    assert np.array_equal(same["x"], w["x"])
    assert np.array_equal(same["particles"], w["particles"]) and np.array_equal(same["mask"], w["mask"])
    # the particle view of the merged file: the same jets (rows) as the HLF view
    pd = load_particles(path, n_particles=None)
    assert pd.P.shape == (10, generate.N_PARTICLES, len(PARTICLE_FEATURES))
    assert np.array_equal(pd.X, d.X) and np.array_equal(pd.y, d.y)
    assert prov["particle_level"]["n_particles"] == generate.N_PARTICLES and "--particles 32" in prov["command"]
    rows = np.flatnonzero(d.y == 2)
    assert np.array_equal(pd.P[rows], w["particles"]) and np.array_equal(pd.X[rows], w["x"].astype(np.float32))


def test_generator_particles_are_the_jet_constituents():
    """With room for every constituent the particle view reproduces the jet: multiplicity, 4-momentum sums."""
    pytest.importorskip("pythia8mc", reason="physics extra not installed (pip install 'hgq-hil[physics]')")
    pytest.importorskip("fastjet", reason="physics extra not installed (pip install 'hgq-hil[physics]')")
    from hgq.data import generate

    res = generate.generate_chunk("t", generate.chunk_seed(9, "t", 0), 3, n_particles=400)
    p, m, x = res["particles"].astype(np.float64), res["mask"], res["x"]
    assert p.shape == (3, 400, len(PARTICLE_FEATURES)) and res["particles"].dtype == np.float32 and m.dtype == bool
    assert np.array_equal(m.sum(axis=1), x[:, F["j_multiplicity"]]) and not m.all()
    assert not np.any(p[~m]) and not np.any(m[:, 1:] & ~m[:, :-1])
    pt, phi = p[..., PF["ptrel"]], p[..., PF["phirel"]]
    assert np.allclose((pt * np.cos(phi)).sum(axis=1), 1, atol=1e-5)  # sum of p_T vectors = jet p_T along its axis
    assert np.allclose((pt * np.sin(phi)).sum(axis=1), 0, atol=1e-5)
    assert np.allclose(p[..., PF["erel"]].sum(axis=1), 1, atol=1e-5)
    assert np.all(np.diff(np.where(m, pt, -1.0), axis=1) <= 0)
    assert np.allclose(p[..., PF["log_ptrel"]][m], np.log(pt[m]), atol=1e-5)
    assert set(np.unique(p[..., PF["charge"]][m])) == {-1.0, 0.0, 1.0}
    # absolute scale: ln pT_i - ln(pT_i / pT_jet) is the same ln pT_jet for every particle of a jet (likewise E),
    # and the jets pass the generator's 800 GeV cut
    for ab, rel in (("log_pt", "log_ptrel"), ("log_e", "log_erel")):
        jet = np.where(m, p[..., PF[ab]] - p[..., PF[rel]], np.nan)
        assert np.nanmax(jet, axis=1) - np.nanmin(jet, axis=1) == pytest.approx(0, abs=2e-2)
        assert np.all(jet[m] > np.log(800.0) - 1e-2)
    assert np.all(p[..., PF["log_e"]][m] >= p[..., PF["log_pt"]][m] - 1e-2)  # E >= pT


def test_generator_refuses_chunks_without_particles(tmp_path):
    """Chunks of an older generator (no particles) or of another --particles are never mixed in."""
    from hgq.data import generate

    seed = generate.chunk_seed(5, "qcd", 0)
    chunk = {"x": np.zeros((4, 16)), "y": np.array([0, 0, 1, 1]), "seed": seed, "n_events": 4, "seconds": 1.0}
    np.savez(tmp_path / "chunk_qcd_0000.npz", **chunk)
    with pytest.raises(ValueError, match="no particle features.*fresh --out"):
        generate.generate(2, tmp_path, workers=1, seed=5, chunk=2, n_particles=16)
    nf = len(PARTICLE_FEATURES)
    np.savez(tmp_path / "chunk_qcd_0000.npz", **chunk, particles=np.zeros((4, 8, nf)), mask=np.zeros((4, 8), bool))
    with pytest.raises(ValueError, match="--particles 8, not 16; use a fresh --out"):
        generate.generate(2, tmp_path, workers=1, seed=5, chunk=2, n_particles=16)
    np.savez(tmp_path / "chunk_qcd_0000.npz", **chunk, particles=np.zeros((4, 16, 8)), mask=np.zeros((4, 16), bool))
    with pytest.raises(ValueError, match=f"has 8 particle features, not the {nf} .*fresh --out"):
        generate.generate(2, tmp_path, workers=1, seed=5, chunk=2, n_particles=16)
    with pytest.raises(ValueError, match="n_particles must be >= 1"):
        generate.generate(2, tmp_path, n_particles=0)


@pytest.fixture(scope="module")
def psample() -> ParticleData:
    return load_particles("sample")


def test_particles_sample_shapes_and_dtypes(psample):
    n = len(psample)
    assert psample.name == GENERATED_NAME and psample.features == PARTICLE_FEATURES and len(PARTICLE_FEATURES) == 10
    assert psample.P.shape == (n, 16, 10) and psample.P.dtype == np.float32
    assert psample.mask.shape == (n, 16) and psample.mask.dtype == bool
    assert psample.X.shape == (n, 16) and psample.y.dtype == np.int64 and psample.classes == CLASSES
    assert psample.counts() == dict.fromkeys(CLASSES, 1000) == psample.provenance["counts"]
    assert psample.provenance["particle_level"]["n_particles"] == 16 and psample.provenance["seed"] != 20260523
    assert np.all(psample.X[:, F["j_multiplicity"]] >= psample.mask.sum(axis=1))
    assert PARTICLES_SAMPLE_FILE.stat().st_size < 1_800_000
    eight = load_particles("sample", n_particles=8)
    assert np.array_equal(eight.P, psample.P[:, :8]) and np.array_equal(eight.mask, psample.mask[:, :8])
    assert np.array_equal(eight.X, psample.X) and load_particles("sample", None).P.shape[1] == 16


def test_particles_sample_consistency(psample):
    """pT-sorted, bounded, mutually consistent features (tolerances: the sample stores float16)."""
    p, m = psample.P.astype(np.float64), psample.mask
    assert not np.any(p[~m]) and not np.any(m[:, 1:] & ~m[:, :-1])
    pt, phi = p[..., PF["ptrel"]], p[..., PF["phirel"]]
    assert np.all(np.diff(np.where(m, pt, -1.0), axis=1) <= 0)
    assert np.all((pt[m] > 0) & (pt[m] <= 1)) and np.all(np.abs(phi) <= np.pi)
    # scalar sum of p_T >= |vector sum| (slightly above 1); the projection on the jet axis of a subset is <= 1
    assert np.all(pt.sum(axis=1) <= 1.1) and np.all((pt * np.cos(phi)).sum(axis=1) <= 1 + 1e-2)
    assert np.all(p[..., PF["erel"]].sum(axis=1) <= 1 + 1e-2)
    assert np.allclose(p[..., PF["log_ptrel"]][m], np.log(pt[m]), atol=1e-2)
    assert np.allclose(p[..., PF["log_erel"]][m], np.log(p[..., PF["erel"]][m]), atol=1e-2)
    dr = np.hypot(p[..., PF["etarel"]], phi)
    assert np.allclose(p[..., PF["delta_r"]], dr, atol=2e-3)
    assert set(np.unique(p[..., PF["charge"]][m])) == {-1.0, 0.0, 1.0}
    # absolute scale: ln pT_i - ln(pT_i / pT_jet) is the same ln pT_jet for every particle of a jet (likewise E),
    # and the jets pass the generator's 800 GeV cut
    for ab, rel in (("log_pt", "log_ptrel"), ("log_e", "log_erel")):
        jet = np.where(m, p[..., PF[ab]] - p[..., PF[rel]], np.nan)
        assert np.nanmax(jet, axis=1) - np.nanmin(jet, axis=1) == pytest.approx(0, abs=2e-2)
        assert np.all(jet[m] > np.log(800.0) - 1e-2)
    assert np.all(p[..., PF["log_e"]][m] >= p[..., PF["log_pt"]][m] - 1e-2)  # E >= pT


def _padded_file(tmp_path, n_particles: int = 6) -> tuple:
    rng = np.random.default_rng(1)
    n = 20
    counts = rng.integers(1, n_particles + 1, n)
    mask = np.arange(n_particles)[None, :] < counts[:, None]
    p = rng.normal(size=(n, n_particles, len(PARTICLE_FEATURES))).astype(np.float32) * mask[..., None]
    x, y = rng.normal(size=(n, 16)), np.arange(n) % 5
    arrays = {"particles": p, "mask": mask, "particle_features": np.array(PARTICLE_FEATURES)}
    return save_dataset(tmp_path / "p.npz", x, y, {"name": "toy"}, arrays=arrays), p, mask


def test_load_particles_padding_and_errors(tmp_path):
    path, p, mask = _padded_file(tmp_path)
    d = load_particles(path, n_particles=4)
    assert d.name == "toy" and np.array_equal(d.P, p[:, :4]) and np.array_equal(d.mask, mask[:, :4])
    assert np.array_equal(load_particles(path, n_particles=None).P, p)
    with pytest.raises(ValueError, match=r"asked for 7 particles per jet, but .*p\.npz holds 6"):
        load_particles(path, n_particles=7)
    with pytest.raises(ValueError, match="asked for 0"):
        load_particles(path, n_particles=0)
    with pytest.raises(FileNotFoundError, match="neither 'sample'"):
        load_particles(tmp_path)  # a directory must hold jsc_generated.npz
    hlf_only = save_dataset(tmp_path / "hlf.npz", np.zeros((2, 16)), [0, 1], {"name": "h"})
    with pytest.raises(ValueError, match=r"no particle-level arrays.*--particles N"):
        load_particles(hlf_only)
    bad = p.copy()
    bad[~mask] = 1.0
    arrays = {"particles": bad, "mask": mask, "particle_features": np.array(PARTICLE_FEATURES)}
    save_dataset(tmp_path / "bad.npz", np.zeros((20, 16)), np.arange(20) % 5, {"name": "b"}, arrays=arrays)
    with pytest.raises(ValueError, match="zero where mask is False"):
        load_particles(tmp_path / "bad.npz", None)
    arrays["particle_features"] = np.array(PARTICLE_FEATURES[::-1])
    save_dataset(tmp_path / "names.npz", np.zeros((20, 16)), np.arange(20) % 5, {"name": "b"}, arrays=arrays)
    with pytest.raises(ValueError, match="differ from"):
        load_particles(tmp_path / "names.npz", None)
    old = {"particles": p[..., :8], "mask": mask, "particle_features": np.array(PARTICLE_FEATURES[:8])}
    save_dataset(tmp_path / "old.npz", np.zeros((20, 16)), np.arange(20) % 5, {"name": "o"}, arrays=old)
    with pytest.raises(ValueError, match=r"another hgq.data.generate: make the set again"):
        load_particles(tmp_path / "old.npz", None)  # a set of the 8-feature generator
    with pytest.raises(ValueError, match="may not be named"):
        save_dataset(tmp_path / "x.npz", np.zeros((1, 16)), [0], {"name": "x"}, arrays={"X": np.zeros(1)})


def test_particle_split_reuses_hlf_split(psample):
    n = len(psample)
    split = particle_split(psample)
    train, test = train_test_indices(n)
    assert np.array_equal(split.hlf.test_index, test) and np.array_equal(split.hlf.train_index, train)
    ref = jsc_split(JSCData(psample.name, psample.X, psample.y))
    assert np.array_equal(split.x_test, ref.x_test) and np.array_equal(split.x_train, ref.x_train)
    assert np.array_equal(split.y_test, psample.y[test]) and np.array_equal(split.mask_test, psample.mask[test])
    assert len(split.p_val) == len(split.x_val) == 0
    val = particle_split(psample, seed=7, val_size=0.1)
    ref = jsc_split(psample.hlf(), random_state=7, val_size=0.1)
    for part in ("train", "val", "test"):
        idx = getattr(ref, f"{part}_index")
        assert np.array_equal(getattr(val.hlf, f"{part}_index"), idx)
        assert np.array_equal(getattr(val, f"x_{part}"), getattr(ref, f"x_{part}"))
        assert np.array_equal(getattr(val, f"p_{part}"), psample.P[idx] * val.p_scale)
    assert len(val.p_val) == 500 and len(val.p_train) == 3500 and len(val.p_test) == 1000


def test_particle_split_power_of_two_scales_from_train_only(psample, tmp_path):
    split = particle_split(psample)
    train = split.hlf.train_index
    exponents = np.log2(split.p_scale)
    assert split.p_scale.dtype == np.float32 and np.array_equal(exponents, np.round(exponents))
    peak = np.abs(psample.P[train]).max(axis=(0, 1))
    assert np.array_equal(split.p_scale, np.exp2(-np.ceil(np.log2(peak))).astype(np.float32))
    assert np.abs(split.p_train).max() <= 1 and np.abs(split.p_train).max(axis=(0, 1)).min() > 0.5
    assert np.array_equal(split.p_train / split.p_scale, psample.P[train])  # exact: powers of two
    assert np.array_equal(split.transform(psample.P[split.hlf.test_index]), split.p_test)
    p_mod = psample.P.copy()
    p_mod[split.hlf.test_index] *= 1000.0
    moved = particle_split(ParticleData(psample.name, p_mod, psample.mask, psample.X, psample.y))
    assert np.array_equal(moved.p_scale, split.p_scale)
    p_mod = psample.P.copy()
    p_mod[train[0]] *= 1000.0
    assert not np.array_equal(
        particle_split(ParticleData(psample.name, p_mod, psample.mask, psample.X, psample.y)).p_scale, split.p_scale
    )
    # padded entries stay exactly zero and the mask travels unchanged
    path, p, mask = _padded_file(tmp_path)
    toy = particle_split(load_particles(path, n_particles=None), test_size=0.25)
    assert not np.any(toy.p_train[~toy.mask_train]) and not np.any(toy.p_test[~toy.mask_test])
    assert np.array_equal(toy.mask_test, mask[toy.hlf.test_index])


def test_one_vectors_reader_strict_and_lenient(tmp_path):
    """hgq.data.load_vectors (strict: float64, x/y only) and sim.load_vectors (lenient, shapes from a layout) share
    one reader: the same file problems get the same messages; only the strict format checks differ."""
    from hgq.data.vectors import read_vectors_file
    from sim.vectors import load_vectors as sim_load

    p = tmp_path / "f32.npz"
    np.savez(p, x=np.ones((2, 3), dtype=np.float32), extra=np.zeros(1))
    with pytest.raises(ValueError, match="unexpected arrays"):
        read_vectors_file(p, strict=True)
    x, y = sim_load(p, {"input": {"shape": [3]}, "output": {"shape": [1]}})
    assert x.dtype == np.float64 and y is None
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 3)))
    for load in (load_vectors, lambda q: sim_load(q, {"input": {"shape": [3]}, "output": {"shape": [1]}})):
        with pytest.raises(ValueError, match=r"vectors file .*empty\.npz: 'x' (holds no vectors|must have shape)"):
            load(empty)
