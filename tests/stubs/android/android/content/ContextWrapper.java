// Compile-only stub for tests: mirrors the public signature of android.content.ContextWrapper, Android API level 36.
package android.content;

import android.content.res.AssetManager;

public class ContextWrapper extends Context {
    public AssetManager getAssets() { throw new UnsupportedOperationException("stub"); }
    public Context getApplicationContext() { throw new UnsupportedOperationException("stub"); }
}
