// Compile-only stub for tests: mirrors the public signature of android.app.Activity, Android API level 36.
package android.app;

import android.os.Bundle;
import android.view.View;

public class Activity extends android.view.ContextThemeWrapper {
    protected void onCreate(Bundle savedInstanceState) { throw new UnsupportedOperationException("stub"); }
    protected void onDestroy() { throw new UnsupportedOperationException("stub"); }
    public void setContentView(View view) { throw new UnsupportedOperationException("stub"); }
    public void onConfigurationChanged(android.content.res.Configuration newConfig) { throw new UnsupportedOperationException("stub"); }
    public boolean isDestroyed() { throw new UnsupportedOperationException("stub"); }
    public final void runOnUiThread(Runnable action) { throw new UnsupportedOperationException("stub"); }
}
