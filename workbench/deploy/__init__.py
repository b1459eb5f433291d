"""Deploy: what may be deployed, what runs where, and packages to take away.

Call order: register a measured variant in a :class:`ModelRegistry` (a version, its SHA-256 and
its lineage: dataset snapshot, training record, variant, measurement), run the deployment gates
on it for a board (:func:`run_gates` gives a :class:`GateReport`; a failed gate stops the
deployment unless forced), upload it to a device and record the deployment in the registry, or
build a package a user can take away (:func:`create_deployment_package`); a Linux board's
package is installed over SSH and reached over TCP (:func:`deploy_linux_package`).

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
    "UpdateManifest": ".manifest", "make_manifest": ".manifest", "ManifestError": ".manifest",
    "deploy_linux_package": ".linux_ssh", "stop_linux_runner": ".linux_ssh",
    "LinuxDeployment": ".linux_ssh", "LinuxDeployError": ".linux_ssh",
    "SshAuthError": ".linux_ssh", "SshUnreachable": ".linux_ssh",
    "SshHostKeyError": ".linux_ssh", "RemoteMissing": ".linux_ssh", "PortBusy": ".linux_ssh",
    "RunnerFailed": ".linux_ssh",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy(__name__, _LAZY)
