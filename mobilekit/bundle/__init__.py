"""The release bundle: atomic writing and the manifest a pipeline keeps."""
