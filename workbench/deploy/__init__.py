"""Deploy: what may be deployed, what runs where, and packages to take away.

Call order: register a measured variant in a :class:`ModelRegistry` (a version, its SHA-256 and
its lineage: dataset snapshot, training record, variant, measurement), run the deployment gates
on it for a board (:func:`run_gates` gives a :class:`GateReport`; a failed gate stops the
deployment unless forced), upload it to a device and record the deployment in the registry, or
build a package a user can take away (:func:`create_deployment_package`). Signed updates:
:func:`generate_key` once, then :func:`make_update_image` (or ``deploy_model(..., key=...)``)
gives an MCUboot image a board provisioned with the key's public half accepts.
A Linux board's package is installed over SSH and reached over TCP (:func:`deploy_linux_package`).

``import workbench.deploy`` is light: each name loads its module on first use.
"""

from __future__ import annotations

from .._exports import lazy

# public name -> submodule that defines it (no submodule is named like a public name)
_LAZY = {
    "ModelRegistry": ".registry", "ModelVersion": ".registry", "Deployment": ".registry",
    "RegistryError": ".registry", "RegistryWarning": ".registry", "UnknownModelError": ".registry",
    "create_deployment_package": ".packages", "DeploymentPackage": ".packages",
    "PackageError": ".packages",
    "run_gates": ".gates", "GateResult": ".gates", "GateReport": ".gates",
    "GateFailed": ".gates",
    "deploy_model": ".flashing", "DeployResult": ".flashing",
    "LivePredictor": ".live", "Prediction": ".live", "BlockFeed": ".live",
    "update_fleet": ".fleet", "DeviceUpdate": ".fleet",
    "smp_update": ".smp_update", "SmpUpdateError": ".smp_update", "SmpUpdateResult": ".smp_update",
    "UpdateManifest": ".manifest", "make_manifest": ".manifest", "ManifestError": ".manifest",
    "SigningKey": ".signing", "SigningError": ".signing", "UpdateImage": ".signing",
    "generate_key": ".signing", "load_key": ".signing", "load_public_key": ".signing",
    "make_update_image": ".signing", "read_update_image": ".signing",
    "deploy_linux_package": ".linux_ssh", "stop_linux_runner": ".linux_ssh",
    "LinuxDeployment": ".linux_ssh", "LinuxDeployError": ".linux_ssh",
    "SshAuthError": ".linux_ssh", "SshUnreachable": ".linux_ssh",
    "SshHostKeyError": ".linux_ssh", "RemoteMissing": ".linux_ssh", "PortBusy": ".linux_ssh",
    "RunnerFailed": ".linux_ssh",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy(__name__, _LAZY)
