import matplotlib.pyplot as plt
import pytest

from sklearn_ddpm import DDPMFeatureTransformer
from sklearn_ddpm.studies import noise_study, plot_noise_variants, plot_sample_efficiency, sample_efficiency
from sklearn_ddpm.studies._common import evaluate


def test_sample_efficiency_runs_and_subsets(toy_data, unet, small_classifier):
    X_train, y_train, X_test, y_test = toy_data
    runs = sample_efficiency(X_train, y_train, X_test, y_test, n_labeled=(1, 3), seeds=(0, 1), model=unet,
                             blocks=(6,), steps=(50,), classifier=small_classifier, progress=False)
    assert runs[["n_labeled", "seed"]].values.tolist() == [[1, 0], [1, 1], [3, 0], [3, 1]]
    assert [len(images) for images in runs.images] == [1, 1, 3, 3]
    assert runs.images[2] == [0, 1, 2]

    # A run is a plain fit on the images it lists, seeded with its seed.
    row = runs.iloc[1]
    transformer = DDPMFeatureTransformer(unet, blocks=(6,), steps=(50,), memory=None).fit()
    clf = small_classifier.set_params(random_state=1, n_classes=3)
    chosen = row.images
    miou, _ = evaluate(clf, transformer.transform([X_train[i] for i in chosen]), [y_train[i] for i in chosen],
                       transformer.transform(X_test), y_test, 3)
    assert row.miou == pytest.approx(miou, abs=1e-9)

    fig = plot_sample_efficiency(runs)
    assert fig.axes[0].get_xlabel() == "labelled training images"
    plt.close(fig)

    with pytest.raises(ValueError, match="pool size 3"):
        sample_efficiency(X_train, y_train, X_test, y_test, n_labeled=(4,), model=unet, progress=False)


def test_noise_variants_reach_the_transformer(toy_data, unet, small_classifier):
    X_train, y_train, X_test, y_test = toy_data
    variants = {"shared": {"noise": "shared"}, "mean of 2": {"n_noise_samples": 2}}
    runs = noise_study(X_train[:2], y_train[:2], X_test[:1], y_test[:1], variants=variants, seeds=(5,),
                       model=unet, blocks=(6,), steps=(200,), classifier=small_classifier, progress=False)
    assert runs.variant.tolist() == ["shared", "mean of 2"]
    assert runs.n_noise_samples.tolist() == [1, 2]
    assert runs.noise.tolist() == ["shared", "shared"]

    transformer = DDPMFeatureTransformer(unet, blocks=(6,), steps=(200,), n_noise_samples=2, random_state=5,
                                         memory=None).fit()
    miou, _ = evaluate(small_classifier.set_params(random_state=5, n_classes=3), transformer.transform(X_train[:2]),
                       y_train[:2], transformer.transform(X_test[:1]), y_test[:1], 3)
    assert runs.miou[1] == pytest.approx(miou, abs=1e-9)

    fig = plot_noise_variants(runs)
    assert fig.axes[0].get_ylabel() == "test mIoU (%)"
    plt.close(fig)
