//! Scratch workspaces: the change set a job left, its patch, and writing it back.
