// Compile-only stub for tests: mirrors the public signature of android.view.ViewGroup, Android API level 36.
package android.view;

import android.content.Context;

public abstract class ViewGroup extends View {
    public static class LayoutParams {
        public static final int MATCH_PARENT = -1;
        public static final int WRAP_CONTENT = -2;
        public LayoutParams(int width, int height) { throw new UnsupportedOperationException("stub"); }
    }
    public static class MarginLayoutParams extends LayoutParams {
        public MarginLayoutParams(int width, int height) { super(width, height); }
    }
    public ViewGroup(Context context) { super(context); }
    public void addView(View child) { throw new UnsupportedOperationException("stub"); }
    public void addView(View child, LayoutParams params) { throw new UnsupportedOperationException("stub"); }
}
