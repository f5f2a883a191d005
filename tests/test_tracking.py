"""The MLflow side, on a real sqlite store: experiments open in the UI's training view."""
import pytest
from mlflow.tracking import MlflowClient

from pipelines.tracking import EXPERIMENT_KIND, get_experiment_id


def test_the_experiment_is_tagged_as_model_training_new_or_old(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    made = get_experiment_id(client, "smallbig", str(tmp_path))
    assert client.get_experiment(made).tags[EXPERIMENT_KIND[0]] == "custom_model_development"
    older = client.create_experiment("from-an-earlier-version")  # no kind tag yet
    assert get_experiment_id(client, "from-an-earlier-version", str(tmp_path)) == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND[0]] == "custom_model_development"


def test_the_ui_links_to_the_training_runs_of_every_experiment_that_has_some(tmp_path):
    from pipelines.cli.tools import training_runs_pages

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    assert training_runs_pages(uri) == {}  # nothing tracked yet: the plain address only
    default = get_experiment_id(client, "smallbig", str(tmp_path))
    custom = get_experiment_id(client, "my-ablation", str(tmp_path))  # --set run.experiment=my-ablation
    client.create_run(custom)
    assert training_runs_pages(uri) == {"my-ablation": f"#/experiments/{custom}/runs"}  # the empty one is left out
    client.create_run(default)
    assert training_runs_pages(uri) == {"my-ablation": f"#/experiments/{custom}/runs",
                                        "smallbig": f"#/experiments/{default}/runs"}


def test_a_store_that_refuses_an_experiment_says_why(tmp_path):
    """Only "someone created it first" is recovered from; any other refusal is the store's own error."""
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MlflowException, match="(?i)experiment name"):
        get_experiment_id(client, "", str(tmp_path))  # MLflow refuses an empty name
