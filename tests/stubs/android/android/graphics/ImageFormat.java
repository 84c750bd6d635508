// Compile-only stub for tests: mirrors the public constants of android.graphics.ImageFormat used by the SDK, Android API level 36.
package android.graphics;

public class ImageFormat {
    public static final int UNKNOWN = 0;
    public static final int NV21 = 0x11;
    public static final int YUV_420_888 = 0x23;
    public static final int JPEG = 0x100;
}
