// Compile-only stub for tests: mirrors the public signature of android.graphics.BitmapFactory, Android API level 36.
package android.graphics;

import java.io.InputStream;

public class BitmapFactory {
    public static Bitmap decodeStream(InputStream is) { throw new UnsupportedOperationException("stub"); }
}
