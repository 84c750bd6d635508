// Compile-only stub for tests: mirrors the public signature of android.widget.ImageView, Android API level 36.
package android.widget;

import android.content.Context;
import android.graphics.Bitmap;
import android.view.View;

public class ImageView extends View {
    public enum ScaleType { MATRIX, FIT_XY, FIT_START, FIT_CENTER, FIT_END, CENTER, CENTER_CROP, CENTER_INSIDE }
    public ImageView(Context context) { super(context); }
    public void setImageBitmap(Bitmap bm) { throw new UnsupportedOperationException("stub"); }
    public void setScaleType(ScaleType scaleType) { throw new UnsupportedOperationException("stub"); }
}
