"""volsurf.surface"""
