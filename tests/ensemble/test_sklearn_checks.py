"""scikit-learn's estimator contract on plain (n_samples, n_features) input."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ddpm import MLPEnsembleClassifier

EXPECTED_FAILED_CHECKS = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes the name of the skorch-style **kwargs catch-all ('kwargs') as a parameter; "
        "only module__/optimizer__/criterion__/iterator_train__/callbacks__ keys are routed parameters"
    ),
    "check_class_weight_classifiers": (
        "the check's 50 unscaled noisy samples make one batch per epoch, too few Adam steps to follow "
        "weights of 1000:0.0001; class_weight is tested in test_classifier.py::test_class_weight_shifts_predictions"
    ),
}


@parametrize_with_checks(
    [MLPEnsembleClassifier(n_estimators=2, max_epochs=30, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
