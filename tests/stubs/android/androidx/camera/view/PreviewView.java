// Compile-only stub for tests: mirrors the public signature of androidx.camera.view.PreviewView, androidx.camera 1.6.2.
package androidx.camera.view;

import android.content.Context;
import android.widget.FrameLayout;
import androidx.camera.core.Preview;

public final class PreviewView extends FrameLayout {
    public PreviewView(Context context) { super(context); }
    public Preview.SurfaceProvider getSurfaceProvider() { throw new UnsupportedOperationException("stub"); }
}
