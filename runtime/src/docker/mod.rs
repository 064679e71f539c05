//! The docker backend: the same JobSpec run as a container through the Docker Engine API.
