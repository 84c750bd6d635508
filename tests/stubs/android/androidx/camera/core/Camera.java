// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.Camera, androidx.camera 1.4.1.
package androidx.camera.core;

public interface Camera {}
