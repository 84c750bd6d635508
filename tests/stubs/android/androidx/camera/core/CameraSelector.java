// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.CameraSelector, androidx.camera 1.6.2.
package androidx.camera.core;

public final class CameraSelector {
    public static final CameraSelector DEFAULT_BACK_CAMERA = null;
    public static final CameraSelector DEFAULT_FRONT_CAMERA = null;
}
