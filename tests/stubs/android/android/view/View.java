// Compile-only stub for tests: mirrors the public signature of android.view.View, Android API level 36.
package android.view;

import android.content.Context;
import android.graphics.Canvas;

public class View {
    public interface OnClickListener { void onClick(View v); }
    public View(Context context) { throw new UnsupportedOperationException("stub"); }
    protected void onDraw(Canvas canvas) { throw new UnsupportedOperationException("stub"); }
    public Display getDisplay() { throw new UnsupportedOperationException("stub"); }
    public void invalidate() { throw new UnsupportedOperationException("stub"); }
    public void postInvalidate() { throw new UnsupportedOperationException("stub"); }
    public final int getWidth() { throw new UnsupportedOperationException("stub"); }
    public final int getHeight() { throw new UnsupportedOperationException("stub"); }
    public void setOnClickListener(OnClickListener l) { throw new UnsupportedOperationException("stub"); }
    public void setBackgroundColor(int color) { throw new UnsupportedOperationException("stub"); }
    public void setPadding(int left, int top, int right, int bottom) { throw new UnsupportedOperationException("stub"); }
}
