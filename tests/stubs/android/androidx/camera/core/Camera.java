// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.Camera, androidx.camera 1.6.2.
package androidx.camera.core;

public interface Camera {}
