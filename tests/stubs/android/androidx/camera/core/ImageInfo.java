// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.ImageInfo, androidx.camera 1.4.1.
package androidx.camera.core;

public interface ImageInfo {
    int getRotationDegrees();
}
