// Compile-only stub for tests: mirrors the public signature of android.widget.FrameLayout, Android API level 36.
package android.widget;

import android.content.Context;
import android.view.ViewGroup;

public class FrameLayout extends ViewGroup {
    public static class LayoutParams extends ViewGroup.MarginLayoutParams {
        public LayoutParams(int width, int height) { super(width, height); }
        public LayoutParams(int width, int height, int gravity) { super(width, height); }
    }
    public FrameLayout(Context context) { super(context); }
}
