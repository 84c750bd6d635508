"""The generated code a bundle ships: the Android library module, the Swift package, and (on request) the sample
apps wired to them — rendered from the contract and written with the models they carry."""

from __future__ import annotations

import io
from pathlib import Path

from mobilekit.bundle.writer import BundleWriter
from mobilekit.codegen import android, ios, sample_apps
from mobilekit.config import AndroidSettings, Config
from mobilekit.contract import Contract
from mobilekit.data.datasets import list_dataset, load_image
from mobilekit.kinds import Kind


def _labels(contract: Contract) -> str:
    return "\n".join(contract.labels) + "\n"


def write_android(w: BundleWriter, contract: Contract, models: dict[str, bytes],
                  settings: AndroidSettings | None = None) -> None:
    """``sdk/android/<name>-sdk/``: Kotlin sources, build files for ``settings.agp``, and the int8 / fp16 models and
    labels as assets."""
    module = f"sdk/android/{android.module_name(contract)}"
    for rel, text in android.render_module(contract, settings).items():
        w.write(f"{module}/{rel}", text, "android-sdk")
    for kind in (Kind.TFLITE_INT8, Kind.TFLITE_FP16):
        if kind in models:
            asset = contract.artifacts[kind].path.split("/")[-1]
            w.write(f"{module}/src/main/assets/{asset}", models[kind], "android-sdk-asset")
    w.write(f"{module}/src/main/assets/labels.txt", _labels(contract), "android-sdk-asset")


def write_ios(w: BundleWriter, contract: Contract, packages: dict[str, Path], deployment_target: str) -> None:
    """``sdk/ios/<Name>Kit/``: the Swift package, with its Core ML packages and labels as resources."""
    root = f"sdk/ios/{ios.kit_name(contract)}"
    for rel, text in ios.render_package(contract, deployment_target).items():
        w.write(f"{root}/{rel}", text, "ios-sdk")
    resources = f"{root}/{ios.resource_dir(contract)}"
    for kind, filename in ios.resources(contract).items():
        w.write_tree(f"{resources}/{filename}", packages[kind], "ios-sdk-resource")
    w.write(f"{resources}/labels.txt", _labels(contract), "ios-sdk-resource")


def write_sample_apps(w: BundleWriter, cfg: Config, contract: Contract, with_ios: bool) -> None:
    """``sample_apps/android`` (and ``sample_apps/ios`` when the bundle has the Swift package), with the first
    calibration image as the bundled still picture."""
    from PIL import Image

    from mobilekit.export.coreml import deployment_target

    ds = cfg.calibration
    first = list_dataset(cfg.resolve(ds.images), ds.format, cfg.resolve(ds.annotations) if ds.annotations else None,
                         1)[0]
    buf = io.BytesIO()
    Image.fromarray(load_image(first.path)).save(buf, format="JPEG", quality=90)
    picture = buf.getvalue()
    for rel, text in sample_apps.render_android(contract, cfg.android).items():
        w.write(f"sample_apps/android/{rel}", text, "sample-app")
    w.write("sample_apps/android/app/src/main/assets/sample.jpg", picture, "sample-app")
    if with_ios:
        for rel, text in sample_apps.render_ios(contract, deployment_target(cfg.coreml)).items():
            w.write(f"sample_apps/ios/{rel}", text, "sample-app")
        w.write(f"sample_apps/ios/{sample_apps.ios_app(contract)}/Resources/sample.jpg", picture, "sample-app")
