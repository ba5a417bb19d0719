"""The original Musicnn (TensorFlow), timed for ``bench_tagger.py --reference-python``.

Runs only under a side environment's python that has the original package and TensorFlow (see
benchmarks/README.md); albumcover itself never imports TensorFlow. Writes its results as JSON to
``--out`` (stdout is left to the original's own prints).

    once  -- a whole fresh process: imports, graph, weights and one song with the stock
             ``musicnn.extractor.extractor()``; reports the top-10 tags and peak RSS.
    warm  -- per-song time of the stock extractor() (it rebuilds the graph and restores the
             weights on every call), of one persistent TF session fed all patches at once, and
             the taggram of the same graph on given patches (for the tag agreement check).
    network -- the persistent session's graph alone on given patches (best of --runs).
"""

import os

# before TensorFlow is imported: the original needs the legacy Keras layers; keep logs quiet
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("once", "warm", "network"))
    parser.add_argument("--audio", required=True, help="song to tag")
    parser.add_argument("--model", default="MTT_musicnn")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (warm), after one warm-up")
    parser.add_argument("--patches", help="(n, 187, 96) .npy to feed the graph (warm)")
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def top10(taggram, labels):
    """The 10 best tags by mean over patches; None if the taggram is not finite (the float16
    overflow of the stock extractor under NumPy 2 gives NaN)."""
    import numpy as np

    scores = np.asarray(taggram, dtype=np.float64).mean(axis=0)
    if not np.isfinite(scores).all():
        return None
    return [labels[i] for i in np.argsort(-scores, kind="stable")[:10]]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_once(args) -> dict:
    from musicnn.extractor import extractor

    taggram, labels = extractor(args.audio, model=args.model, extract_features=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "top10": top10(taggram, labels),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


class PersistentSession:
    """The original graph built once, weights restored once: the fastest way to run it."""

    def __init__(self, model: str):
        import musicnn
        import tensorflow as tf
        from musicnn import configuration as config
        from musicnn import models

        tf.compat.v1.disable_eager_execution()
        self.labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
        self.graph = tf.Graph()
        with self.graph.as_default():
            with tf.name_scope("model"):  # as extractor() builds it
                self.x = tf.compat.v1.placeholder(tf.float32, [None, 187, config.N_MELS])
                self.is_training = tf.compat.v1.placeholder(tf.bool)
                outputs = models.define_model(self.x, self.is_training, model, len(self.labels))
                self.y = tf.nn.sigmoid(outputs[0])
            self.session = tf.compat.v1.Session(graph=self.graph)
            self.session.run(tf.compat.v1.global_variables_initializer())
            # no try/except here, unlike the original: a failed restore must not go unnoticed
            weights = os.path.join(os.path.dirname(musicnn.__file__), model, "")
            tf.compat.v1.train.Saver().restore(self.session, weights)

    def taggram(self, patches):
        return self.session.run(self.y, feed_dict={self.x: patches, self.is_training: False})

    def tag_song(self, path):
        """librosa decode + the recipe with the log in float32 (the NumPy 2 fix) + one run."""
        import librosa
        import numpy as np

        audio, sr = librosa.load(path, sr=16000)
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=256, n_fft=512, n_mels=96)
        mel = np.log10(10000 * mel.T + 1)
        starts = range(0, mel.shape[0] - 187 + 1, 187)
        return self.taggram(np.stack([mel[s : s + 187] for s in starts]))


def timed(fn, runs: int) -> tuple[tuple[float, float], object]:
    """(median wall s, median CPU s of the process), last result; after a warm-up (first-call
    costs are what "once" measures)."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def run_warm(args) -> dict:
    import numpy as np
    from musicnn.extractor import extractor

    stock_s, _ = timed(
        lambda: extractor(args.audio, model=args.model, extract_features=False), args.runs
    )
    session = PersistentSession(args.model)
    persistent_s, taggram = timed(lambda: session.tag_song(args.audio), args.runs)
    result = {
        "stock_s": stock_s,
        "persistent_s": persistent_s,
        "top10_end_to_end": top10(taggram, session.labels),
        "labels": session.labels,
    }
    if args.patches:
        same = session.taggram(np.load(args.patches))
        result["taggram_same_patches"] = same.tolist()
        result["top10_same_patches"] = top10(same, session.labels)
    return result


def run_network(args) -> dict:
    """The persistent session's graph alone on --patches: best wall and CPU s of --runs."""
    import numpy as np

    session = PersistentSession(args.model)
    patches = np.load(args.patches)
    session.taggram(patches)  # warm-up
    walls, cpus = [], []
    for _ in range(args.runs):
        wall, cpu = time.perf_counter(), time.process_time()
        session.taggram(patches)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"network_s": [min(walls), min(cpus)]}


def main(args) -> None:
    import tensorflow as tf

    if args.threads:  # before any session exists; v1 sessions take the context's config
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    modes = {"once": run_once, "warm": run_warm, "network": run_network}
    result = modes[args.mode](args)
    result["versions"] = {"tensorflow": tf.__version__}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(parse_args())
