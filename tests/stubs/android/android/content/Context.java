// Compile-only stub for tests: mirrors the public signature of android.content.Context, Android API level 36.
package android.content;

import android.content.res.AssetManager;

public abstract class Context {
    public abstract AssetManager getAssets();
    public abstract Context getApplicationContext();
}
