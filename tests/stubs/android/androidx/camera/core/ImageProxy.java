// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.ImageProxy, androidx.camera 1.6.2.
package androidx.camera.core;

import android.graphics.Bitmap;

public interface ImageProxy extends AutoCloseable {
    void close();
    int getWidth();
    int getHeight();
    ImageInfo getImageInfo();
    Bitmap toBitmap();
}
