import dataclasses
import typing

import pytest

from imagegen.config import check_choices, from_dict
from imagegen.errors import ConfigError
from imagegen.models.base import GenerativeModel
from imagegen.registry import get_model_class, list_models, register_model


def test_models_are_registered_by_name():
    names = list_models()
    assert "dcgan" in names
    cls = get_model_class("dcgan")
    assert issubclass(cls, GenerativeModel) and cls.model_name == "dcgan"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match="available models: .*dcgan"):
        get_model_class("no-such-model")


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(RuntimeError, match="registered twice"):
        @register_model("dcgan")
        class Other(GenerativeModel):
            pass


def test_config_from_dict_checks_names_and_types():
    cls = get_model_class("dcgan").Config
    cfg = from_dict(cls, {"z_dim": "64", "loss": "hinge"})
    assert cfg.z_dim == 64 and cfg.loss == "hinge"
    assert dataclasses.asdict(from_dict(cls, dataclasses.asdict(cfg))) == dataclasses.asdict(cfg)
    with pytest.raises(ConfigError, match="unknown .*zdim"):
        from_dict(cls, {"zdim": 3})
    with pytest.raises(ConfigError, match="z_dim=.*int"):
        from_dict(cls, {"z_dim": 1.5})
    with pytest.raises(ConfigError, match="loss='x' is not one of"):
        from_dict(cls, {"loss": "x"})


def test_every_literal_option_is_checked_from_the_python_api_too():
    """A bad choice given to a config's constructor (not through the CLI or a saved config) is refused
    when the model is built, instead of selecting some default branch silently."""
    checked = 0
    for name in list_models():
        cls = get_model_class(name).Config
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if typing.get_origin(tp) is typing.Union:
                tp = next(a for a in typing.get_args(tp) if a is not type(None))
            if typing.get_origin(tp) is not typing.Literal:
                continue
            cfg = cls()
            setattr(cfg, f.name, "bogus")
            with pytest.raises(ConfigError, match=f"{f.name}='bogus' is not one of"):
                check_choices(cfg)
            checked += 1
    assert checked >= 15
    dcgan = get_model_class("dcgan")
    with pytest.raises(ConfigError, match="loss='hinj' is not one of"):
        dcgan(dcgan.Config(loss="hinj"))
    with pytest.raises(ConfigError, match="conv_mode='group' is not one of"):
        get_model_class("stylegan2").Config(conv_mode="group")
