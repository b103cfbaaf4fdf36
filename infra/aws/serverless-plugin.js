'use strict';
// Local osls plugin: before osls packages anything, run infra/aws/package.py, which
//   1. validates the shipped config with our own validator (core.config) and stops the build
//      when it is missing or invalid, and
//   2. installs the locked wheels for provider.architecture / provider.runtime
//      (pip --platform: no Docker, no local python3.13), and, once osls has zipped the code,
//   3. adds them to the function zip.
// Python: $SMF_PYTHON, else ./.venv/bin/python (./dev creates it), else python3.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class SmfPackage {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.prepare(),
      'after:package:createDeploymentArtifacts': () => this.inject(),
    };
  }

  root() {
    return this.serverless.serviceDir || this.serverless.config.servicePath;
  }

  depsDir() {
    const arch = this.serverless.service.provider.architecture || 'x86_64';
    return path.join(this.root(), '.build', `aws-deps-${arch}`);
  }

  run(args) {
    const root = this.root();
    const done = spawnSync(this.python(root), [path.join(root, 'infra', 'aws', 'package.py'), ...args],
      { stdio: 'inherit', cwd: root });
    if (done.error || done.status !== 0) {
      throw new this.serverless.classes.Error(
        'smf preflight failed: the package was not built (see the message above)');
    }
  }

  inject() {
    const service = this.serverless.service;
    const artifact = service.package.artifact
      || path.join(this.root(), '.serverless', `${service.service}.zip`);
    this.run(['--inject', artifact, '--out', this.depsDir()]);
  }

  python(root) {
    if (process.env.SMF_PYTHON) return process.env.SMF_PYTHON;
    const venv = path.join(root, '.venv', 'bin', 'python');
    return fs.existsSync(venv) ? venv : 'python3';
  }

  prepare() {
    const provider = this.serverless.service.provider;
    const env = provider.environment || {};
    this.run([
      '--arch', provider.architecture || 'x86_64',
      '--runtime', provider.runtime,
      '--config', path.join(this.root(), env.SMF_CONFIG_PATH || 'smf-config.yaml'),
      '--out', this.depsDir(),
    ]);
  }
}

module.exports = SmfPackage;
