// Compile-only stub for tests: mirrors the public signature of android.view.OrientationEventListener, Android API level 36.
package android.view;

import android.content.Context;

public abstract class OrientationEventListener {
    public static final int ORIENTATION_UNKNOWN = -1;
    public OrientationEventListener(Context context) { throw new UnsupportedOperationException("stub"); }
    public void enable() { throw new UnsupportedOperationException("stub"); }
    public void disable() { throw new UnsupportedOperationException("stub"); }
    public abstract void onOrientationChanged(int orientation);
}
