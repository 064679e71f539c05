//! `sandbox-images`: root filesystems built locally as tarballs and imported into Docker, so
//! that no registry is needed.
