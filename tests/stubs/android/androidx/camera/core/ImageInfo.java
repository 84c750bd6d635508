// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.ImageInfo, androidx.camera 1.6.2.
package androidx.camera.core;

public interface ImageInfo {
    long getTimestamp();
    int getRotationDegrees();
}
