"""scikit-learn's estimator contract on plain (n_samples, n_features) input."""

from sklearn.utils.estimator_checks import check_class_weight_classifiers, parametrize_with_checks

from sklearn_ddpm import MLPEnsembleClassifier

EXPECTED_FAILED_CHECKS = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes the name of the skorch-style **kwargs catch-all ('kwargs') as a parameter; "
        "only module__/optimizer__/criterion__/iterator_train__/callbacks__ keys are routed parameters"
    ),
    "check_class_weight_classifiers": (
        "not a step-count problem (2,000 epochs fail too): with weights 1000:0.0001 the loss is, to 1e-7, "
        "the cross-entropy of the class-0 points alone, among 50 overlapping noisy points. At lr=1e-3 the MLP "
        "drives it to ~0 by fitting those points (training recall 1.0, loss 7e-5 at 2,000 epochs) and leaves "
        "25-30% of the test points to class 1; the vanished gradient then keeps it there. The check's 0.87 "
        "assumes the weights shift the decision everywhere, which is the only way down for a linear model: "
        "the same estimator with hidden_layer_sizes=() passes "
        "(test_class_weight_passes_sklearn_check_as_linear_model), as does the MLP with lr=0.1"
    ),
}


@parametrize_with_checks(
    [MLPEnsembleClassifier(n_estimators=2, max_epochs=30, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_class_weight_passes_sklearn_check_as_linear_model():
    """The check that the MLP xfails, on the same estimator without hidden layers.

    Multinomial logistic regression can only lower the class-0 loss by moving its decision
    everywhere, which is what the check measures; it fails if class_weight is not applied.
    """
    linear = MLPEnsembleClassifier(n_estimators=2, hidden_layer_sizes=(), max_epochs=30, lr=0.1, random_state=0)
    check_class_weight_classifiers(type(linear).__name__, linear)
