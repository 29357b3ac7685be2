"""volsurf.signals"""
