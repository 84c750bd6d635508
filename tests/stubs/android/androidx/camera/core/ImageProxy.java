// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.ImageProxy (with PlaneProxy), androidx.camera 1.6.2.
package androidx.camera.core;

import android.graphics.Bitmap;
import java.nio.ByteBuffer;

public interface ImageProxy extends AutoCloseable {
    void close();
    int getFormat();
    int getWidth();
    int getHeight();
    PlaneProxy[] getPlanes();
    ImageInfo getImageInfo();
    Bitmap toBitmap();

    interface PlaneProxy {
        int getRowStride();
        int getPixelStride();
        ByteBuffer getBuffer();
    }
}
