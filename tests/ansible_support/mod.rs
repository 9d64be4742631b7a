//! Helpers for the Ansible tests: run `ansible-playbook`/`ansible-lint` from the test venv with
//! a private ANSIBLE_HOME, read the PLAY RECAP, start programs exactly as the deployed systemd
//! units would, and build the small task repository and release tarball the deployment uses.
#![allow(dead_code)]

pub mod ansible;
pub mod deploy;
pub mod units;
