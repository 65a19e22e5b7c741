import mlflow.pytorch
import pytest
import torch


@pytest.mark.integration
def test_trained_model_fixture(trained_model):
    m = mlflow.pytorch.load_model(trained_model.uri)
    print(trained_model)
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
