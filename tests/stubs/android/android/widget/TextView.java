// Compile-only stub for tests: mirrors the public signature of android.widget.TextView, Android API level 36.
package android.widget;

import android.content.Context;
import android.view.View;

public class TextView extends View {
    public TextView(Context context) { super(context); }
    public final void setText(CharSequence text) { throw new UnsupportedOperationException("stub"); }
    public void setTextColor(int color) { throw new UnsupportedOperationException("stub"); }
    public void setTextSize(float size) { throw new UnsupportedOperationException("stub"); }
}
